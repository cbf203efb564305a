//! Check digits of the identity numbers applicants give at the window: the
//! 18-digit resident identity number (居民身份证号码, GB 11643-1999) and the
//! 18-character unified social credit code (统一社会信用代码, GB 32100-2015).
//! The console mirrors these checks in its script for immediate feedback;
//! these are the ones that decide.

use thiserror::Error;

/// The identity document types whose numbers carry a check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// 居民身份证 (GB 11643).
    ResidentId,
    /// 统一社会信用代码 (GB 32100).
    CreditCode,
}

impl IdKind {
    /// The kind an applicant's `id_type` names, if its numbers are checked.
    pub fn of_type(id_type: &str) -> Option<IdKind> {
        match id_type.trim() {
            "身份证" | "居民身份证" | "resident_id" => Some(IdKind::ResidentId),
            "统一社会信用代码" | "credit_code" => Some(IdKind::CreditCode),
            _ => None,
        }
    }
}

/// Why an identity number is not a valid one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdNumberError {
    /// Not 18 characters of the right alphabet.
    #[error("{0} must be 18 characters: {1}")]
    Form(&'static str, &'static str),
    /// The birth date (GB 11643) is not a date.
    #[error("resident identity number: {0} is not a birth date")]
    BirthDate(String),
    /// The check character does not match.
    #[error("{kind}: the check character is {given}, the other 17 give {expected}; a character was mistyped")]
    Check {
        /// Which number.
        kind: &'static str,
        /// The check character given.
        given: char,
        /// The one the other characters give.
        expected: char,
    },
}

/// GB 11643 weights: 2^(17-i) mod 11.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// ISO 7064 MOD 11-2 check characters, by the weighted sum mod 11.
const ID_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The GB 32100 alphabet (no I, O, Z, S or V): a character's value is its
/// position.
const CREDIT_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100 weights: 3^(i-1) mod 31.
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The check character (GB 11643, ISO 7064 MOD 11-2) that completes the
/// 17 digits `first17` of a resident identity number; `None` unless they
/// are 17 digits.
pub fn resident_id_check(first17: &str) -> Option<char> {
    let b = first17.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    Some(ID_CHECK[(sum % 11) as usize])
}

/// Checks an 18-digit resident identity number: 17 digits (region, birth
/// date, sequence) and the ISO 7064 MOD 11-2 check character (`X` for 10;
/// a lower-case `x` is taken as `X`).
pub fn check_resident_id(number: &str) -> Result<(), IdNumberError> {
    const WHAT: &str = "a resident identity number";
    let b = number.as_bytes();
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17].eq_ignore_ascii_case(&b'X'))
    {
        return Err(IdNumberError::Form(
            WHAT,
            "17 digits and a check digit or X",
        ));
    }
    let birth = &number[6..14];
    if chrono::NaiveDate::parse_from_str(birth, "%Y%m%d").is_err() || &birth[..2] < "18" {
        return Err(IdNumberError::BirthDate(birth.to_string()));
    }
    let expected = resident_id_check(&number[..17]).unwrap_or('?');
    let given = char::from(b[17]).to_ascii_uppercase();
    if given != expected {
        return Err(IdNumberError::Check {
            kind: "resident identity number",
            given,
            expected,
        });
    }
    Ok(())
}

/// Checks an 18-character unified social credit code: the registration
/// authority, organisation type, region (6 digits) and organisation code
/// in the GB 32100 alphabet, then its check character.
pub fn check_credit_code(code: &str) -> Result<(), IdNumberError> {
    const WHAT: &str = "a unified social credit code";
    let b = code.as_bytes();
    let value = |c: u8| {
        CREDIT_ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .map(|p| p as u32)
    };
    let values: Option<Vec<u32>> = b.iter().map(|&c| value(c)).collect();
    let Some(values) = values.filter(|v| v.len() == 18) else {
        return Err(IdNumberError::Form(
            WHAT,
            "digits and capital letters other than I, O, Z, S and V",
        ));
    };
    if !b[2..8].iter().all(u8::is_ascii_digit) {
        return Err(IdNumberError::Form(
            WHAT,
            "its 3rd to 8th characters are the region code's digits",
        ));
    }
    let sum: u32 = values[..17]
        .iter()
        .zip(CREDIT_WEIGHTS)
        .map(|(v, w)| v * w)
        .sum();
    let expected = CREDIT_ALPHABET[((31 - sum % 31) % 31) as usize];
    if b[17].to_ascii_uppercase() != expected {
        return Err(IdNumberError::Check {
            kind: "unified social credit code",
            given: char::from(b[17]).to_ascii_uppercase(),
            expected: char::from(expected),
        });
    }
    Ok(())
}

/// Checks `number` if `id_type` names a document whose numbers carry a
/// check digit; other types (passports, permits) are taken as given.
pub fn check_id_number(id_type: &str, number: &str) -> Result<(), IdNumberError> {
    match IdKind::of_type(id_type) {
        Some(IdKind::ResidentId) => check_resident_id(number),
        Some(IdKind::CreditCode) => check_credit_code(number),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_numbers_with_their_check_digit_pass() {
        // The examples of GB 11643-1999 itself.
        check_resident_id("11010519491231002X").unwrap();
        check_resident_id("11010519491231002x").unwrap();
        check_resident_id("440524188001010014").unwrap();
        check_resident_id("140212199001011237").unwrap();
    }

    #[test]
    fn a_mistyped_resident_number_is_refused_with_the_expected_check_digit() {
        let err = check_resident_id("110105194912310021").unwrap_err();
        assert_eq!(
            err,
            IdNumberError::Check {
                kind: "resident identity number",
                given: '1',
                expected: 'X'
            }
        );
        // Two digits swapped.
        assert!(check_resident_id("440524188001010041").is_err());
        assert!(check_resident_id("140212199001011234").is_err());
    }

    #[test]
    fn resident_numbers_of_the_wrong_form_or_birth_date_are_refused() {
        for bad in [
            "",
            "11010519491231002",
            "11010519491231002XX",
            "1101051949123100X2",
            "11010519491231002Y",
            "１１０１０５１９４９１２３１００２Ｘ",
        ] {
            assert!(
                matches!(check_resident_id(bad), Err(IdNumberError::Form(..))),
                "{bad}"
            );
        }
        assert!(matches!(
            check_resident_id("110105194902300028"),
            Err(IdNumberError::BirthDate(_))
        ));
        assert!(matches!(
            check_resident_id("110105094912310028"),
            Err(IdNumberError::BirthDate(_))
        ));
    }

    #[test]
    fn credit_codes_with_their_check_character_pass() {
        // GB 32100's example, and one made with the standard's weights.
        check_credit_code("91350100M000100Y43").unwrap();
        let with_check = |stem: &str| {
            let sum: u32 = stem
                .bytes()
                .zip(CREDIT_WEIGHTS)
                .map(|(c, w)| CREDIT_ALPHABET.iter().position(|&a| a == c).unwrap() as u32 * w)
                .sum();
            format!(
                "{stem}{}",
                char::from(CREDIT_ALPHABET[((31 - sum % 31) % 31) as usize])
            )
        };
        let code = with_check("12140212012345678");
        check_credit_code(&code).unwrap();
        check_credit_code(&code.to_lowercase()).unwrap();
    }

    #[test]
    fn a_mistyped_credit_code_is_refused_with_the_expected_check_character() {
        let err = check_credit_code("91350100M000100Y44").unwrap_err();
        assert_eq!(
            err,
            IdNumberError::Check {
                kind: "unified social credit code",
                given: '4',
                expected: '3'
            }
        );
        assert!(check_credit_code("91350100M000100Y34").is_err());
    }

    #[test]
    fn credit_codes_of_the_wrong_form_are_refused() {
        for bad in [
            "",
            "91350100M000100Y4",
            "91350100M000100Y433",
            // I, O, Z, S, V are not in the alphabet.
            "91350100M000100I43",
            "91350100M000100O43",
            "9135010OM000100Y43",
            "91350100S000100Y43",
            "91350100V000100Y43",
            "91350100Z000100Y43",
            // The region is digits.
            "9135A100M000100Y43",
        ] {
            assert!(
                matches!(check_credit_code(bad), Err(IdNumberError::Form(..))),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_the_types_with_check_digits_are_checked() {
        assert!(check_id_number("身份证", "140212199001011234").is_err());
        assert!(check_id_number("居民身份证", "140212199001011237").is_ok());
        assert!(check_id_number("统一社会信用代码", "91350100M000100Y44").is_err());
        assert!(check_id_number("护照", "E12345678").is_ok());
    }
}
