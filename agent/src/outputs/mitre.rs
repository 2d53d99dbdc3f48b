//! MITRE ATT&CK from rule tags: `T1059.004` names a (sub-)technique,
//! `mitre_execution` a tactic. Names come from small tables of the
//! techniques Linux runtime rules commonly cite; an unknown id keeps its id
//! without a name.

/// The threat block of an alert: ids, names and references, in tag order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Threat {
    pub tactics: Vec<(&'static str, &'static str)>,
    /// Technique ids (`T1059`), names where known.
    pub techniques: Vec<(String, Option<&'static str>)>,
    /// Sub-technique ids (`T1059.004`), names where known.
    pub subtechniques: Vec<(String, Option<&'static str>)>,
}

impl Threat {
    pub fn is_empty(&self) -> bool {
        self.tactics.is_empty() && self.techniques.is_empty()
    }
}

/// Enterprise tactics: tag suffix, id, name.
const TACTICS: &[(&str, &str, &str)] = &[
    ("reconnaissance", "TA0043", "Reconnaissance"),
    ("resource_development", "TA0042", "Resource Development"),
    ("initial_access", "TA0001", "Initial Access"),
    ("execution", "TA0002", "Execution"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege_escalation", "TA0004", "Privilege Escalation"),
    ("defense_evasion", "TA0005", "Defense Evasion"),
    ("credential_access", "TA0006", "Credential Access"),
    ("discovery", "TA0007", "Discovery"),
    ("lateral_movement", "TA0008", "Lateral Movement"),
    ("collection", "TA0009", "Collection"),
    ("command_and_control", "TA0011", "Command and Control"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
];

/// Technique and sub-technique names.
const TECHNIQUES: &[(&str, &str)] = &[
    ("T1003", "OS Credential Dumping"),
    ("T1003.007", "Proc Filesystem"),
    ("T1003.008", "/etc/passwd and /etc/shadow"),
    ("T1014", "Rootkit"),
    ("T1021", "Remote Services"),
    ("T1021.004", "SSH"),
    ("T1036", "Masquerading"),
    ("T1036.005", "Match Legitimate Name or Location"),
    ("T1040", "Network Sniffing"),
    ("T1046", "Network Service Discovery"),
    ("T1053", "Scheduled Task/Job"),
    ("T1053.003", "Cron"),
    ("T1055", "Process Injection"),
    ("T1055.008", "Ptrace System Calls"),
    ("T1057", "Process Discovery"),
    ("T1059", "Command and Scripting Interpreter"),
    ("T1059.004", "Unix Shell"),
    ("T1059.006", "Python"),
    ("T1068", "Exploitation for Privilege Escalation"),
    ("T1070", "Indicator Removal"),
    ("T1070.002", "Clear Linux or Mac System Logs"),
    ("T1070.003", "Clear Command History"),
    ("T1070.004", "File Deletion"),
    ("T1071", "Application Layer Protocol"),
    ("T1082", "System Information Discovery"),
    ("T1083", "File and Directory Discovery"),
    ("T1087", "Account Discovery"),
    ("T1098", "Account Manipulation"),
    ("T1098.004", "SSH Authorized Keys"),
    ("T1105", "Ingress Tool Transfer"),
    ("T1136", "Create Account"),
    ("T1140", "Deobfuscate/Decode Files or Information"),
    ("T1190", "Exploit Public-Facing Application"),
    ("T1211", "Exploitation for Defense Evasion"),
    ("T1222", "File and Directory Permissions Modification"),
    (
        "T1222.002",
        "Linux and Mac File and Directory Permissions Modification",
    ),
    ("T1485", "Data Destruction"),
    ("T1496", "Resource Hijacking"),
    ("T1543", "Create or Modify System Process"),
    ("T1543.002", "Systemd Service"),
    ("T1546", "Event Triggered Execution"),
    ("T1546.004", "Unix Shell Configuration Modification"),
    ("T1547", "Boot or Logon Autostart Execution"),
    ("T1547.006", "Kernel Modules and Extensions"),
    ("T1548", "Abuse Elevation Control Mechanism"),
    ("T1548.001", "Setuid and Setgid"),
    ("T1548.003", "Sudo and Sudo Caching"),
    ("T1552", "Unsecured Credentials"),
    ("T1552.001", "Credentials In Files"),
    ("T1552.004", "Private Keys"),
    ("T1554", "Compromise Host Software Binary"),
    ("T1555", "Credentials from Password Stores"),
    ("T1562", "Impair Defenses"),
    ("T1562.001", "Disable or Modify Tools"),
    ("T1564", "Hide Artifacts"),
    ("T1564.001", "Hidden Files and Directories"),
    ("T1574", "Hijack Execution Flow"),
    ("T1574.006", "Dynamic Linker Hijacking"),
    ("T1610", "Deploy Container"),
    ("T1611", "Escape to Host"),
    ("T1613", "Container and Resource Discovery"),
    ("T1620", "Reflective Code Loading"),
];

/// The ATT&CK content of `tags`.
pub fn from_tags(tags: &[String]) -> Threat {
    let mut t = Threat::default();
    for tag in tags {
        if let Some(name) = tag.strip_prefix("mitre_") {
            if let Some(&(_, id, name)) = TACTICS.iter().find(|(k, ..)| *k == name)
                && !t.tactics.iter().any(|(i, _)| *i == id)
            {
                t.tactics.push((id, name));
            }
            continue;
        }
        let Some(id) = technique_id(tag) else {
            continue;
        };
        let (base, sub) = match id.split_once('.') {
            Some((base, _)) => (base.to_owned(), Some(id.clone())),
            None => (id.clone(), None),
        };
        if !t.techniques.iter().any(|(i, _)| *i == base) {
            let name = name_of(&base);
            t.techniques.push((base, name));
        }
        if let Some(sub) = sub
            && !t.subtechniques.iter().any(|(i, _)| *i == sub)
        {
            let name = name_of(&sub);
            t.subtechniques.push((sub, name));
        }
    }
    t
}

/// `T1059` or `T1059.004` (any case), normalised to upper case.
fn technique_id(tag: &str) -> Option<String> {
    let b = tag.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let ok = match b.len() {
        5 => digits(&b[1..5]),
        9 => digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..9]),
        _ => false,
    };
    (ok && (b[0] == b'T' || b[0] == b't')).then(|| tag.to_ascii_uppercase())
}

fn name_of(id: &str) -> Option<&'static str> {
    TECHNIQUES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The ATT&CK page of a technique, tactic or sub-technique id.
pub fn reference(id: &str) -> String {
    let kind = if id.starts_with("TA") {
        "tactics"
    } else {
        "techniques"
    };
    format!("https://attack.mitre.org/{kind}/{}/", id.replace('.', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn techniques_subtechniques_and_tactics() {
        let t = from_tags(&tags(&[
            "container",
            "T1059.004",
            "mitre_execution",
            "t1003",
            "T1059",
            "mitre_nonsense",
        ]));
        assert_eq!(t.tactics, vec![("TA0002", "Execution")]);
        assert_eq!(
            t.techniques,
            vec![
                ("T1059".into(), Some("Command and Scripting Interpreter")),
                ("T1003".into(), Some("OS Credential Dumping")),
            ]
        );
        assert_eq!(
            t.subtechniques,
            vec![("T1059.004".into(), Some("Unix Shell"))]
        );
    }

    #[test]
    fn look_alikes_are_not_techniques() {
        for tag in [
            "T105",
            "T10599",
            "T1059.04",
            "TX059",
            "T1059-004",
            "filesystem",
        ] {
            assert!(from_tags(&tags(&[tag])).is_empty(), "{tag}");
        }
        assert_eq!(
            from_tags(&tags(&["T9999"])).techniques,
            vec![("T9999".into(), None)]
        );
    }

    #[test]
    fn references() {
        assert_eq!(
            reference("T1059.004"),
            "https://attack.mitre.org/techniques/T1059/004/"
        );
        assert_eq!(
            reference("TA0002"),
            "https://attack.mitre.org/tactics/TA0002/"
        );
    }
}
