//! Tests whose outcome the retry-policy test chooses, through two variables:
//! `RETRY_FIXTURE_MODE` (any of `flaky`, `broken`, `many`) and
//! `RETRY_FIXTURE_STATE`, a directory that remembers earlier attempts.

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Whether `RETRY_FIXTURE_MODE` (words separated by spaces) has `word`.
    fn mode(word: &str) -> bool {
        std::env::var("RETRY_FIXTURE_MODE").unwrap_or_default().split(' ').any(|w| w == word)
    }

    /// How many times `name` ran before, counting this run.
    fn attempt(name: &str) -> u32 {
        let dir = PathBuf::from(std::env::var("RETRY_FIXTURE_STATE").expect("RETRY_FIXTURE_STATE"));
        let file = dir.join(name);
        let count = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0) + 1;
        std::fs::write(&file, count.to_string()).expect("state file");
        count
    }

    #[test]
    fn steady() {
        attempt("steady");
    }

    /// Fails on its first attempt only.
    #[test]
    fn flaky_once() {
        let attempt = attempt("flaky_once");
        assert!(!mode("flaky") || attempt > 1, "flaky_once fails on attempt {attempt}");
    }

    /// Fails every time in `broken` mode.
    #[test]
    fn always_fails() {
        let attempt = attempt("always_fails");
        assert!(!mode("broken"), "always_fails fails on attempt {attempt}");
    }

    macro_rules! many {
        ($($name:ident),*) => {$(
            /// Fails on the first attempt in `many` mode (a retry would fix it).
            #[test]
            fn $name() {
                let attempt = attempt(stringify!($name));
                assert!(!mode("many") || attempt > 1, "fails on attempt {attempt}");
            }
        )*};
    }
    many!(many_01, many_02, many_03, many_04, many_05, many_06, many_07, many_08, many_09, many_10, many_11);
}
