fn main() {
    std::process::exit(thinger_patch::cli::main());
}
