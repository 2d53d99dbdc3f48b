//! An append-only file that rotates by size: past `max_bytes` the file is
//! renamed `NAME.1` (older ones shift to `NAME.2`... up to `keep`) and a new
//! one starts. Lines are never split across files.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    /// 0: never rotate.
    max_bytes: u64,
    keep: u32,
    file: File,
    size: u64,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            max_bytes,
            keep,
            file,
            size,
        })
    }

    /// Appends one whole line (rotating first if it would not fit).
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.max_bytes > 0 && self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeping_whole_lines() {
        let dir = std::env::temp_dir().join(format!("mamori-rot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.json");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..20 {
            f.write_line(format!("{{\"n\":{i:03},\"pad\":\"xxxxxxxxxx\"}}\n").as_bytes())
                .unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let current = read(&path);
        let one = read(&dir.join("alerts.json.1"));
        let two = read(&dir.join("alerts.json.2"));
        assert!(
            !dir.join("alerts.json.3").exists(),
            "only `keep` old files stay"
        );
        for text in [&current, &one, &two] {
            assert!(text.len() <= 100 && !text.is_empty());
            assert!(text.lines().all(|l| l.starts_with('{') && l.ends_with('}')));
        }
        assert!(current.contains("\"n\":019"));
        assert!(one.contains(&format!("\"n\":{:03}", 19 - current.lines().count())));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
