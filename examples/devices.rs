//! Lists every GPU adapter wgtrain finds and what each can do; the first is the one
//! `Device::new()` picks. Run: `cargo run --example devices`.

fn main() {
    let all = wgtrain::Device::all();
    if all.is_empty() {
        eprintln!(
            "no GPU adapter found. On Linux: apt-get install -y mesa-vulkan-drivers (lavapipe)."
        );
        std::process::exit(1);
    }
    for d in all {
        match d {
            Ok(dev) => println!("adapter: {}", dev.describe()),
            Err(e) => println!("adapter failed to open: {e}"),
        }
    }
}
