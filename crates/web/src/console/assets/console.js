// hallsync console: identity-number checks as they are typed (the server
// checks the same rules: crates/model/src/idcheck.rs), a question before
// irreversible actions, and the print button. No other script runs.
"use strict";

(function () {
  // GB 11643: 18-digit resident identity number, ISO 7064 MOD 11-2.
  var ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  var ID_CHECK = "10X98765432";

  function residentId(n) {
    if (!/^[0-9]{17}[0-9Xx]$/.test(n)) {
      return "身份证号码应为18位：前17位为数字，最后一位为数字或X。";
    }
    var y = +n.slice(6, 10), m = +n.slice(10, 12), d = +n.slice(12, 14);
    var date = new Date(Date.UTC(y, m - 1, d));
    if (y < 1800 || date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) {
      return "身份证号码中的出生日期 " + n.slice(6, 14) + " 不是有效日期。";
    }
    var sum = 0;
    for (var i = 0; i < 17; i++) sum += (+n[i]) * ID_WEIGHTS[i];
    var expected = ID_CHECK[sum % 11];
    var given = n[17].toUpperCase();
    if (given !== expected) {
      return "身份证号码校验位不符（末位为 " + given + "，按前17位应为 " + expected + "），请逐位核对。";
    }
    return "";
  }

  // GB 32100: 18-character unified social credit code.
  var CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  var CODE_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

  function creditCode(c) {
    c = c.toUpperCase();
    if (c.length !== 18) return "统一社会信用代码应为18位。";
    var values = [];
    for (var i = 0; i < 18; i++) {
      var v = CODE_CHARS.indexOf(c[i]);
      if (v < 0) return "统一社会信用代码只含数字和大写字母（不含 I、O、Z、S、V）：第 " + (i + 1) + " 位“" + c[i] + "”不对。";
      values.push(v);
    }
    if (!/^[0-9]{6}$/.test(c.slice(2, 8))) return "统一社会信用代码第3至8位应为行政区划代码（数字）。";
    var sum = 0;
    for (var j = 0; j < 17; j++) sum += values[j] * CODE_WEIGHTS[j];
    var expected = CODE_CHARS[(31 - (sum % 31)) % 31];
    if (c[17] !== expected) {
      return "统一社会信用代码校验位不符（末位为 " + c[17] + "，按前17位应为 " + expected + "），请逐位核对。";
    }
    return "";
  }

  function checkerFor(type) {
    if (type === "身份证" || type === "居民身份证") return residentId;
    if (type === "统一社会信用代码") return creditCode;
    return null;
  }

  function wireIdCheck(input) {
    var typeSelect = document.getElementById(input.getAttribute("data-idcheck"));
    var msg = document.getElementById(input.getAttribute("aria-describedby"));
    var neutral = msg ? msg.textContent : "";
    function check(final) {
      var value = input.value.trim();
      var checker = typeSelect ? checkerFor(typeSelect.value) : null;
      var problem = "";
      if (checker && value !== "" && (final || value.length >= 18)) problem = checker(value);
      input.setCustomValidity(problem);
      input.setAttribute("aria-invalid", problem ? "true" : "false");
      if (!msg) return;
      if (problem) {
        msg.textContent = problem;
        msg.className = "hint bad";
      } else if (checker && value.length === 18) {
        msg.textContent = "校验通过。";
        msg.className = "hint good";
      } else {
        msg.textContent = neutral;
        msg.className = "hint";
      }
    }
    input.addEventListener("input", function () { check(false); });
    input.addEventListener("blur", function () { check(true); });
    if (typeSelect) typeSelect.addEventListener("change", function () { check(true); });
    if (input.form) input.form.addEventListener("submit", function () { check(true); });
  }

  function wireConfirm(form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  }

  function wireSubmitOnce(form) {
    form.addEventListener("submit", function (e) {
      if (e.defaultPrevented) return;
      var buttons = form.querySelectorAll("button[type=submit]");
      for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var inputs = document.querySelectorAll("input[data-idcheck]");
    for (var i = 0; i < inputs.length; i++) wireIdCheck(inputs[i]);
    var confirms = document.querySelectorAll("form[data-confirm]");
    for (var j = 0; j < confirms.length; j++) wireConfirm(confirms[j]);
    var forms = document.querySelectorAll("form[method=post]");
    for (var k = 0; k < forms.length; k++) wireSubmitOnce(forms[k]);
    var print = document.querySelector("[data-print]");
    if (print) print.addEventListener("click", function () { window.print(); });
    // An action opened from the keyboard takes the focus to its first field.
    var actions = document.querySelectorAll("details.action");
    for (var a = 0; a < actions.length; a++) {
      actions[a].addEventListener("toggle", function (e) {
        var d = e.target;
        if (!d.open) return;
        var field = d.querySelector("input:not([type=hidden]), select, textarea");
        if (field) field.focus();
      });
    }
  });

  window.hallsyncIdCheck = { residentId: residentId, creditCode: creditCode };
})();
