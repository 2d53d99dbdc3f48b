//! The parity test's table: for each enabled rule of Falco's three
//! published files, what fires it on this node, or why nothing can (see
//! `triggers.rs` for how each kind of trigger runs).

/// How a rule is fired.
pub(super) enum How {
    /// A script run by busybox `sh` on the host. `b NAME ARGS` runs busybox
    /// under the name NAME (its applet NAME, or "applet not found": the
    /// exec is what counts), `as NAME APPLET ARGS` runs busybox named NAME
    /// as APPLET, `$A` is the test actor (a copy any user may run), `$D` a
    /// scratch directory.
    Host(&'static str),
    /// A script run by `sh` as the entry process of a container of the
    /// test image, with these podman options; `b` and `as` as on the host.
    Container(&'static [&'static str], &'static str),
    /// A container whose entry process is this command (no shell).
    Entry(&'static [&'static str], &'static [&'static str]),
    /// The rule cannot fire on this node, for this reason.
    Cannot(&'static str),
}

pub(super) struct Trigger {
    /// The rules one run of the trigger fires.
    pub(super) rules: &'static [&'static str],
    pub(super) how: How,
}

const fn host(rules: &'static [&'static str], script: &'static str) -> Trigger {
    Trigger {
        rules,
        how: How::Host(script),
    }
}

const fn container(
    rules: &'static [&'static str],
    options: &'static [&'static str],
    script: &'static str,
) -> Trigger {
    Trigger {
        rules,
        how: How::Container(options, script),
    }
}

/// A network namespace of the host where 198.51.100.1 (a documentation
/// address: neither loopback nor private, so "outbound") is local and a
/// TCP listener waits on port `$1`.
pub(super) const NETNS: &str = "netns() { unshare -n /bin/busybox sh -c 'ip link set lo up; ip addr add 198.51.100.1/32 dev lo; /bin/busybox nc -l -p $1 </dev/null >/dev/null 2>&1 & sleep 0.3; eval \"$2\"; kill $! 2>/dev/null' netns \"$@\"; }\n";

pub(super) const TRIGGERS: &[Trigger] = &[
    // Falco's stable rules.
    host(
        &["Directory traversal monitored file read"],
        "as web sh -c '$B/cat /etc/../etc/../etc/hostname >/dev/null; true'",
    ),
    host(
        &["Read sensitive file untrusted"],
        "as web sh -c 'read x < /etc/shadow; true'",
    ),
    host(
        // A server process that has run for more than 5 s.
        &["Read sensitive file trusted after startup"],
        "(as nginx sh -c '$B/sleep 6; read x < /etc/shadow; true' &)",
    ),
    host(
        &[
            "Run shell untrusted",
            "Web Server Spawned Shell",
            "Web Server Spawned Suspicious Child Process",
            "Reverse Shell from Web Server",
        ],
        "as nginx sh -c '$B/sh -c true; $B/whoami >/dev/null; $B/sh -c \": /dev/tcp/x\"; true'",
    ),
    host(
        &["System user interactive"],
        "as sshd sh -c '$A as-user 65534 $B/sh -c true; true'",
    ),
    container(&["Terminal shell in container"], &["-t"], "true; true"),
    Trigger {
        rules: &["Contact K8S API Server From Container"],
        how: How::Container(
            &["--network", "host"],
            "b nc -w 1 127.88.0.9 $PARITY_API_PORT",
        ),
    },
    container(
        &[
            "Netcat Remote Code Execution in Container",
            "Launch Suspicious Network Tool in Container",
        ],
        &[],
        "b nc 127.0.0.1 1 -e /bin/true",
    ),
    host(
        &["Search Private Keys or Passwords"],
        "b grep 'BEGIN PRIVATE' /dev/null",
    ),
    host(&["Clear Log Activities"], ": > $D/syslog"),
    host(
        &["Remove Bulk Data from Disk"],
        "echo x > $D/bulk; b shred $D/bulk",
    ),
    host(
        &["Create Symlink Over Sensitive Files"],
        "b ln -s /etc/shadow $D/shadow-link",
    ),
    host(
        &["Create Hardlink Over Sensitive Files"],
        "b ln /etc/shadow $D/shadow-hardlink",
    ),
    container(
        &["Packet socket created in container"],
        &["--cap-add", "NET_RAW"],
        "b arping -c 1 -w 1 -I lo 127.0.0.1",
    ),
    container(
        &["Redirect STDOUT/STDIN to Network Connection in Container"],
        &[],
        "(b nc -l -p 7007 >/dev/null &); b sleep 0.3; b nc 127.0.0.1 7007 -e /bin/true",
    ),
    container(
        &["Linux Kernel Module Injection Detected"],
        // Podman's seccomp profile answers ENOSYS without the kernel seeing
        // the call, as it does for any container.
        &[
            "--cap-add",
            "SYS_MODULE",
            "--security-opt",
            "seccomp=unconfined",
        ],
        "echo not-a-module > /tmp/m.ko; b insmod /tmp/m.ko",
    ),
    container(
        &[
            "Launch Privileged Container",
            "Debugfs Launched in Privileged Container",
            "Mount Launched in Privileged Container",
        ],
        &["--privileged"],
        "b debugfs; b mount -t tmpfs parity /tmp",
    ),
    container(
        &[
            "Detect release_agent File Container Escapes",
            "Launch Excessively Capable Container",
        ],
        &["--cap-add", "SYS_ADMIN"],
        "echo /x > /tmp/release_agent",
    ),
    host(&["PTRACE attached to process"], "$A ptrace >/dev/null"),
    host(&["PTRACE anti-debug attempt"], "$A traceme"),
    host(
        &["Find AWS Credentials"],
        "b grep aws_access_key_id /dev/null",
    ),
    host(
        &["Execution from /dev/shm"],
        "b sh -c /dev/shm/mamori-parity-none 2>/dev/null; true",
    ),
    container(
        &["Drop and execute new binary in container"],
        &[],
        "cp /bin/busybox /tmp/dropped; /tmp/dropped true",
    ),
    host(
        &["Disallowed SSH Connection Non Standard Port"],
        "cp $A $B/ssh; netns 443 \"$B/ssh connect 443 198.51.100.1\"",
    ),
    host(
        &["Fileless execution via memfd_create"],
        "$A memfd-exec $B/true",
    ),
    // Falco's incubating rules.
    host(
        &["Modify Shell Configuration File"],
        "as web sh -c 'echo >> $D/.bashrc'",
    ),
    host(
        &["Schedule Cron Jobs"],
        "b crontab -l >/dev/null 2>&1; true",
    ),
    container(
        &[
            "Read ssh information",
            "Adding ssh keys to authorized_keys",
            "Write below monitored dir",
        ],
        &[],
        "mkdir -p /root/.ssh; echo key > /root/.ssh/authorized_keys; cat /root/.ssh/authorized_keys >/dev/null",
    ),
    host(
        &["DB program spawned process"],
        "as mysqld sh -c '$B/cat /dev/null; true'",
    ),
    host(
        &["Change thread namespace"],
        "as enter nsenter -t $$ -u $B/true",
    ),
    container(
        &["Change namespace privileges via unshare"],
        &[],
        "b unshare -u true 2>/dev/null; true",
    ),
    host(
        &["System procs network activity"],
        "cp $A $B/tee; netns 80 \"$B/tee connect 80 198.51.100.1\"",
    ),
    host(
        &["Program run with disallowed http proxy env"],
        "HTTP_PROXY=http://127.0.0.1:1 b wget --help 2>/dev/null; true",
    ),
    host(
        &["Unexpected UDP Traffic"],
        "netns 1 '$A udp-connect 9999 198.51.100.1'",
    ),
    host(&["Non sudo setuid"], "$A as-user 12345 $A setuid 12345"),
    host(&["User mgmt binaries"], "b chage 2>/dev/null; true"),
    container(
        &["Create files below dev"],
        &[],
        "echo x > /dev/mamori-parity",
    ),
    container(
        &[
            "Contact EC2 Instance Metadata Service From Container",
            "Contact cloud metadata service from container",
        ],
        &["--cap-add", "NET_ADMIN"],
        "b ip link set lo up; b ip addr add 169.254.169.254/32 dev lo; (b nc -l -p 80 >/dev/null &); b sleep 0.3; b nc -w 1 169.254.169.254 80 </dev/null",
    ),
    container(
        &["Launch Package Management Process in Container"],
        &[],
        "b apt-get 2>/dev/null; true",
    ),
    host(
        &[
            "Launch Suspicious Network Tool on Host",
            "Netcat/Socat Remote Code Execution on Host",
        ],
        "b nc 127.0.0.1 1 -e $B/true 2>/dev/null; true",
    ),
    host(
        &["Delete or rename shell history"],
        "echo > $D/.bash_history; b rm $D/.bash_history",
    ),
    host(
        &["Set Setuid or Setgid bit"],
        "echo > $D/suid; b chmod u+s $D/suid",
    ),
    container(
        &["Launch Remote File Copy Tools in Container"],
        &[],
        "b rsync 2>/dev/null; true",
    ),
    Trigger {
        rules: &["Network Connection outside Local Subnet"],
        how: How::Cannot(
            "it watches only the Kubernetes namespaces of the list namespace_scope_network_only_subnet, empty in Falco's file",
        ),
    },
    container(
        &["Launch Ingress Remote File Copy Tools in Container"],
        &[],
        "b wget -q -T 1 http://127.0.0.1:1/ 2>/dev/null; true",
    ),
    container(
        &["Read environment variable from /proc files"],
        &[],
        "cat /proc/1/environ >/dev/null",
    ),
    Trigger {
        // `kubectl cp` runs tar as the container's entry process.
        rules: &["Exfiltrating Artifacts via Kubernetes Control Plane"],
        how: How::Entry(&[], &["/bin/tar", "-cf", "/dev/null", "/bin/busybox"]),
    },
    host(
        &["Potential Local Privilege Escalation via Environment Variables Misuse"],
        "GLIBC_TUNABLES=glibc.malloc.check=0 b cat /dev/null",
    ),
    host(
        &["Backdoored library loaded into SSHD (CVE-2024-3094)"],
        "echo > $D/liblzma.so.5.6.1; as sshd sh -c 'read x < $D/liblzma.so.5.6.1; true'",
    ),
    host(&["BPF Program Not Profiled"], "$A bpf-load"),
    // Falco's sandbox rules.
    container(
        &[
            "Update Package Repository",
            "Write below binary dir",
            "Write below etc",
            "Write below root",
            "Write below rpm database",
            "Modify binary dirs",
            "Mkdir binary dirs",
            "Container Access to Host Sensitive Paths",
        ],
        &[],
        "mkdir -p /etc/apt /root /var/lib/rpm /host; echo > /etc/apt/sources.list; echo > /bin/parity; \
         echo > /etc/parity; echo > /root/parity; echo > /var/lib/rpm/parity; b mv /bin/parity /bin/parity2; \
         b mkdir /bin/parity-dir; echo > /host/parity",
    ),
    container(
        &["Launch Sensitive Mount Container"],
        &["-v", "/etc:/host-etc:ro"],
        "true",
    ),
    Trigger {
        rules: &["Privileged Container Device Access"],
        how: How::Cannot(
            "no disk device can be opened on this machine: opening /dev/vda fails with EPERM even for root on the host (the machine's device policy), and there is no /dev/mem",
        ),
    },
    Trigger {
        rules: &["Launch Disallowed Container"],
        how: How::Cannot(
            "its macro allowed_containers is `container.id exists` in Falco's file: every container is allowed until the user narrows it",
        ),
    },
    host(
        &["Detect crypto miners using the Stratum protocol"],
        "b echo stratum+tcp://pool.example:3333 >/dev/null",
    ),
    container(
        &["Kubernetes Client Tool Launched in Container"],
        &[],
        "b kubectl 2>/dev/null; true",
    ),
    host(
        &["Sudo Potential Privilege Escalation"],
        "b sudo -s 'x\\' 2>/dev/null; true",
    ),
    host(
        &["Unprivileged Delegation of Page Faults Handling to a Userspace Process"],
        "$A as-user 12345 $A userfaultfd 2>/dev/null; true",
    ),
    host(
        &["Polkit Local Privilege Escalation Vulnerability (CVE-2021-4034)"],
        "b pkexec 2>/dev/null; true",
    ),
    container(
        &["Decoding Payload in Container"],
        &[],
        "echo aGk= | b base64 -d >/dev/null",
    ),
    container(
        // Job control gives the command its own process group, on a terminal.
        &["Basic Interactive Reconnaissance"],
        &["-t"],
        "set -m; b whoami >/dev/null; true",
    ),
    container(
        &["Network Tool Executed During NPM Package Install"],
        &[],
        "cp /bin/busybox /tmp/nc; as npm sh -c '/tmp/nc -h 2>/dev/null; true'",
    ),
    host(
        &["Known Cryptominer Process Executed"],
        "b xmrig 2>/dev/null; true",
    ),
];

/// Copies of busybox the host scripts' inner shells run by path.
/// (All the names `as` runs too: a trigger left running in the
/// background must not be copying one while the next executes it.)
pub(super) const HOST_TOOLS: &[&str] = &[
    "sh", "cat", "sleep", "whoami", "true", "nginx", "web", "sshd", "mysqld", "enter",
];

/// Shell functions every script may use (see [`How::Host`]).
pub(super) const PRELUDE: &str = "b() { n=$1; shift; [ -e $B/$n ] || cp /bin/busybox $B/$n; $B/$n \"$@\"; }\n\
as() { n=$1; a=$2; shift 2; [ -e $B/$n ] || cp /bin/busybox $B/$n; (exec -a \"$a\" $B/$n \"$@\"); }\n";
