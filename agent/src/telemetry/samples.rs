//! The `/metrics` exposition read back as samples: what the agent's status
//! document reports is taken from the same text a Prometheus scrape gets,
//! so the two never disagree.

/// One sample: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// The samples of an exposition (comments and `# EOF` skipped; a line
/// that does not parse is skipped too: the text is the agent's own).
#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<Sample>);

impl Samples {
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(sample)
                .collect(),
        )
    }

    /// The sum of every sample of `name` (0 when there is none).
    pub fn sum(&self, name: &str) -> f64 {
        self.of(name).map(|s| s.value).sum()
    }

    /// The sum of the samples of `name` with every one of `labels`.
    pub fn sum_where(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.of(name)
            .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .map(|s| s.value)
            .sum()
    }

    /// The distinct values of label `key` among the samples of `name`.
    pub fn label_values(&self, name: &str, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .of(name)
            .filter_map(|s| s.label(key).map(str::to_owned))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The first sample of `name`.
    pub fn first(&self, name: &str) -> Option<&Sample> {
        self.0.iter().find(|s| s.name == name)
    }

    fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.0.iter().filter(move |s| s.name == name)
    }
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `name{k="v",...} value`, label values unescaped (`\\`, `\"`, `\n`).
fn sample(line: &str) -> Option<Sample> {
    let end = line.find(['{', ' '])?;
    let name = line[..end].to_owned();
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (key, r) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let close = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim_start_matches(',').to_owned(), value));
            rest = &r[close + 1..];
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_the_exposition_wrote() {
        let text = "# TYPE a counter\n\
                    a_total 3\n\
                    b_total{rule=\"x \\\"y\\\"\\nz, w\",priority=\"Warning\"} 2\n\
                    b_total{rule=\"v\",priority=\"Error\"} 5\n\
                    c 1.5e3\n\
                    # EOF\n";
        let s = Samples::parse(text);
        assert_eq!(s.sum("a_total"), 3.0);
        assert_eq!(s.sum("b_total"), 7.0);
        assert_eq!(s.sum_where("b_total", &[("priority", "Error")]), 5.0);
        assert_eq!(
            s.sum_where("b_total", &[("priority", "Error"), ("rule", "x")]),
            0.0
        );
        assert_eq!(
            s.label_values("b_total", "rule"),
            ["v", "x \"y\"\nz, w"],
            "escapes undone, commas and spaces inside values kept"
        );
        assert_eq!(s.first("c").unwrap().value, 1500.0);
        assert_eq!(s.sum("missing"), 0.0);
    }
}
