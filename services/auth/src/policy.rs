//! The `Accounts_Password_Policy_*` password policy, as Rocket.Chat's `PasswordPolicy.validate`.

use apogee_types::{ServiceError, ServiceResult};
use serde_json::{Value, json};

use crate::service::Auth;

/// A setting, the characters it asks for, and the reason given when none is present.
type CharRule = (&'static str, fn(char) -> bool, &'static str, &'static str);

const NOT_MET: &str = "error-password-policy-not-met";
const NOT_MET_TEXT: &str = "The password provided does not meet the server's password policy.";

/// Whether some character occurs more than `count` times in a row (`(.)\1{count,}`).
fn has_repeats(password: &str, count: i64) -> bool {
    let mut run = 0_i64;
    let mut last = None;
    for c in password.chars() {
        run = if last == Some(c) { run + 1 } else { 0 };
        last = Some(c);
        if run >= count {
            return true;
        }
    }
    false
}

impl Auth {
    /// Refuses a new password that breaks the policy, with one reason per broken rule.
    pub(crate) fn check_password_policy(&self, password: &str) -> ServiceResult<()> {
        if password.trim().is_empty() {
            return Err(ServiceError::invalid(NOT_MET, NOT_MET_TEXT));
        }
        let key = |s: &str| format!("Accounts_Password_Policy_{s}");
        if !self.setting_bool(&key("Enabled")) {
            return Ok(());
        }
        let len = i64::try_from(password.chars().count()).unwrap_or(i64::MAX);
        let mut reasons: Vec<Value> = Vec::new();
        let mut reason =
            |error: &str, message: &str| reasons.push(json!({"error": error, "message": message}));
        let min = self.setting_i64(&key("MinLength"), 7);
        if min >= 1 && len < min {
            reason(
                "error-password-policy-not-met-minLength",
                "The password does not meet the minimum length password policy.",
            );
        }
        let max = self.setting_i64(&key("MaxLength"), -1);
        if max >= 1 && len > max {
            reason(
                "error-password-policy-not-met-maxLength",
                "The password does not meet the maximum length password policy.",
            );
        }
        if self.setting_bool(&key("ForbidRepeatingCharacters"))
            && has_repeats(password, self.setting_i64(&key("ForbidRepeatingCharactersCount"), 3))
        {
            reason(
                "error-password-policy-not-met-repeatingCharacters",
                "The password contains repeating characters which is against the password policy.",
            );
        }
        let checks: [CharRule; 4] = [
            (
                "AtLeastOneLowercase",
                |c| c.is_ascii_lowercase(),
                "error-password-policy-not-met-oneLowercase",
                "The password does not contain at least one lowercase character which is against the password policy.",
            ),
            (
                "AtLeastOneUppercase",
                |c| c.is_ascii_uppercase(),
                "error-password-policy-not-met-oneUppercase",
                "The password does not contain at least one uppercase character which is against the password policy.",
            ),
            (
                "AtLeastOneNumber",
                |c| c.is_ascii_digit(),
                "error-password-policy-not-met-oneNumber",
                "The password does not contain at least one numerical character which is against the password policy.",
            ),
            (
                "AtLeastOneSpecialCharacter",
                |c| !c.is_ascii_alphanumeric() && c != ' ',
                "error-password-policy-not-met-oneSpecial",
                "The password does not contain at least one special character which is against the password policy.",
            ),
        ];
        for (setting, test, error, message) in checks {
            if self.setting_bool(&key(setting)) && !password.chars().any(test) {
                reason(error, message);
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::invalid(NOT_MET, NOT_MET_TEXT).with_details(Value::Array(reasons)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::has_repeats;

    #[test]
    fn repeats_follow_the_count() {
        assert!(has_repeats("aaaa", 3));
        assert!(!has_repeats("aaa", 3));
        assert!(has_repeats("xaab", 1));
        assert!(!has_repeats("abab", 1));
    }
}
