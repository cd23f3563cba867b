//! The examples' command lines: `--name value` options and `--name` switches. Anything else is
//! refused with the list of what is accepted: a mistyped option would otherwise be ignored and
//! the run would quietly use the default.

use std::str::FromStr;

/// The value after `name`, parsed; `default` when `name` is absent.
pub fn arg<T: FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a value")),
    }
}

/// Checks that every argument is one of the first `positional` (not starting with `--`), an
/// option of `options` followed by its value, or a switch of `switches`.
pub fn check(
    args: &[String],
    positional: usize,
    options: &[&str],
    switches: &[&str],
) -> Result<(), String> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if options.contains(&a) {
            i += 2;
        } else if switches.contains(&a) || (i < positional && !a.starts_with("--")) {
            i += 1;
        } else {
            return Err(format!(
                "unknown argument {a:?}; options (each with a value): {}; switches: {}",
                options.join(" "),
                switches.join(" ")
            ));
        }
    }
    Ok(())
}
