fn main() {
    std::process::exit(thinger_patch_cli::main());
}
