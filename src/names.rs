//! Names checked at the edge, so the core never sees an unchecked string.

/// A login: an email address or a user name, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(String);

impl Login {
    pub fn parse(text: &str) -> Result<Login, String> {
        let login = text.trim().to_lowercase();
        let ok_chars = login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
        if !(3..=64).contains(&login.chars().count()) || !ok_chars {
            return Err("a login is 3 to 64 letters, digits or . _ @ + -".into());
        }
        Ok(Login(login))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What other people see: a person's, class's, student's or room's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX: usize = 80;

    pub fn parse(text: &str) -> Result<DisplayName, String> {
        let name = text.trim();
        if name.is_empty() || name.chars().count() > Self::MAX || name.chars().any(char::is_control)
        {
            return Err(format!(
                "a name is 1 to {} characters, without control characters",
                Self::MAX
            ));
        }
        Ok(DisplayName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            Login::parse(" Ana@School.org ").unwrap().as_str(),
            "ana@school.org"
        );
        assert!(Login::parse("a b").is_err());
        assert!(Login::parse("ab").is_err());
        assert_eq!(
            DisplayName::parse("  Ms Rivera ").unwrap().as_str(),
            "Ms Rivera"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("bell\u{7}").is_err());
    }
}
