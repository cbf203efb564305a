//! What makes a record valid: one definition, for every writer and every
//! reader.
//!
//! A writer checks the record it is about to store with
//! [`Record::validate`](crate::schema::Record::validate); the schema reader
//! runs the same check on every record it reads, from the disk, a peer or a
//! file. So a record this node writes is one every node reads back, and a
//! write another node would refuse is refused at the door, naming the field
//! and the limit, instead of travelling up and stopping a link.

use thiserror::Error;

/// Longest string field accepted, in characters.
pub const MAX_STR: usize = 4096;
/// Most entries in one collection (events, review records, days, lists).
pub const MAX_ENTRIES: usize = 4096;

/// Why a record is not valid: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("field {path}: {reason}")]
pub struct Invalid {
    /// Where in the record, e.g. `applicant.name` or `events.tw-101.a.3.reason`.
    pub path: String,
    /// What is wrong, with the limit where one applies.
    pub reason: String,
}

impl Invalid {
    /// A problem with the field at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Invalid {
        Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The same problem, seen from the record that holds `parent`.
    pub fn within(self, parent: &str) -> Invalid {
        Invalid {
            path: if self.path.is_empty() {
                parent.to_string()
            } else {
                format!("{parent}.{}", self.path)
            },
            reason: self.reason,
        }
    }
}

/// A text field of at most `max` characters (it may be empty).
pub fn text(path: &str, s: &str, max: usize) -> Result<(), Invalid> {
    if s.chars().count() > max {
        return Err(Invalid::new(
            path,
            format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// A text field that must say something, of at most `max` characters.
pub fn required(path: &str, s: &str, max: usize) -> Result<(), Invalid> {
    if s.trim().is_empty() {
        return Err(Invalid::new(path, "is required"));
    }
    text(path, s, max)
}

/// A collection of at most `max` entries.
pub fn entries(path: &str, n: usize, max: usize) -> Result<(), Invalid> {
    if n > max {
        return Err(Invalid::new(path, format!("has more than {max} entries")));
    }
    Ok(())
}

/// A list of texts: at most [`MAX_ENTRIES`] of at most [`MAX_STR`]
/// characters each.
pub fn texts(path: &str, items: &[String]) -> Result<(), Invalid> {
    entries(path, items.len(), MAX_ENTRIES)?;
    for (i, s) in items.iter().enumerate() {
        text(&format!("{path}[{i}]"), s, MAX_STR)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_not_bytes_and_name_the_field() {
        assert!(text("a", &"办".repeat(MAX_STR), MAX_STR).is_ok());
        let err = text("applicant.name", &"办".repeat(MAX_STR + 1), MAX_STR).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field applicant.name: is longer than 4096 characters"
        );
        assert_eq!(
            required("by", "  ", 10).unwrap_err().to_string(),
            "field by: is required"
        );
        let nested = Invalid::new("reason", "x").within("events.tw-101.a.1");
        assert_eq!(nested.path, "events.tw-101.a.1.reason");
    }
}
