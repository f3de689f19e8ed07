fn main() {
    std::process::exit(augury::cli::run());
}
