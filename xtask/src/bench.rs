pub fn run(what: &str) -> anyhow::Result<()> {
    anyhow::bail!("unknown benchmark {what}")
}
