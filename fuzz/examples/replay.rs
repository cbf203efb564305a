//! Runs inputs through a harness without libFuzzer, in a normal build:
//! `cargo run -p hallsync-fuzz --example replay -- HARNESS FILE...`
//! (for debugging a crash: the panic and its backtrace show what broke).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(h) = args.first().and_then(|n| hallsync_fuzz::harness(n)) else {
        let names: Vec<&str> = hallsync_fuzz::HARNESSES.iter().map(|h| h.name).collect();
        eprintln!(
            "usage: replay HARNESS FILE... (harnesses: {})",
            names.join(" ")
        );
        std::process::exit(2);
    };
    for file in &args[1..] {
        let input = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{file} ({} bytes)", input.len());
        (h.run)(&input);
    }
    eprintln!("ok");
}
