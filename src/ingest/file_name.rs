//! The client's file name, reduced to a harmless label.

const MAX_FILE_NAME_BYTES: usize = 255;

/// Characters that change how the text around them is shown without being
/// seen themselves: bidirectional overrides, embeddings, isolates and marks
/// (which can make `gpj.exe` read as `exe.jpg`), zero-width characters and
/// line separators.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Last path component, no control or invisible formatting characters, at
/// most 255 bytes; `None` when nothing is left. Only ever used as metadata.
pub fn clean_file_name(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = base.chars().filter(|c| !c.is_control() && !is_invisible_format(*c)).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        return None;
    }
    let mut end = cleaned.len().min(MAX_FILE_NAME_BYTES);
    while !cleaned.is_char_boundary(end) {
        end -= 1;
    }
    Some(cleaned[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_reduced_to_a_label() {
        assert_eq!(clean_file_name("cat.png").as_deref(), Some("cat.png"));
        assert_eq!(clean_file_name("C:\\Users\\me\\cat.png").as_deref(), Some("cat.png"));
        assert_eq!(clean_file_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_file_name("a\r\nb.png").as_deref(), Some("ab.png"));
        // U+202E RIGHT-TO-LEFT OVERRIDE would show "cat\u{202E}gnp.exe" as "catexe.png".
        assert_eq!(clean_file_name("cat\u{202E}gnp.exe").as_deref(), Some("catgnp.exe"));
        for c in
            ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200F}']
        {
            assert_eq!(clean_file_name(&format!("a{c}b.png")).as_deref(), Some("ab.png"), "{:X}", c as u32);
        }
        assert_eq!(clean_file_name(".."), None);
        assert_eq!(clean_file_name("  "), None);
        let long = "é".repeat(200);
        let cleaned = clean_file_name(&long).unwrap();
        assert!(cleaned.len() <= MAX_FILE_NAME_BYTES && cleaned.chars().all(|c| c == 'é'));
    }
}
