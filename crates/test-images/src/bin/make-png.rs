//! `make-png OUT.png [--width 400] [--height 300] [--seed 42]`: writes a
//! decodable PNG of noisy pixels (hardly compressible) for uploads, and
//! prints its size. Same arguments, same bytes.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut out, mut width, mut height, mut seed) = (None, 400, 300, 42);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| args.next().and_then(|v| v.parse().ok()).ok_or(format!("{name} needs a number"));
        let parsed = match arg.as_str() {
            "--width" => number("--width").map(|v| width = v as u32),
            "--height" => number("--height").map(|v| height = v as u32),
            "--seed" => number("--seed").map(|v| seed = v),
            path if out.is_none() && !path.starts_with('-') => {
                out = Some(path.to_owned());
                Ok(())
            }
            other => Err(format!("unexpected argument {other:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("make-png: {e}\nusage: make-png OUT.png [--width 400] [--height 300] [--seed 42]");
            return ExitCode::from(2);
        }
    }
    let Some(out) = out else {
        eprintln!("usage: make-png OUT.png [--width 400] [--height 300] [--seed 42]");
        return ExitCode::from(2);
    };
    let png = picshelf_test_images::NoisyPng::new(width, height, seed);
    if let Err(e) = std::fs::write(&out, png.as_bytes()) {
        eprintln!("make-png: cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    println!("{}", png.len());
    ExitCode::SUCCESS
}
