//! Raw `bpf(2)` calls for the tamper actions (no library: the exact
//! commands are the point).

const MAP_CREATE: i64 = 0;
const MAP_LOOKUP_ELEM: i64 = 1;
const MAP_UPDATE_ELEM: i64 = 2;
const MAP_GET_FD_BY_ID: i64 = 14;
const OBJ_GET_INFO_BY_FD: i64 = 15;

fn call(cmd: i64, attr: &mut [u64; 16]) -> i64 {
    // SAFETY: `attr` is a zeroed 128-byte `union bpf_attr` buffer.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128usize) }
}

/// The map ids in PID's fdinfo files.
pub fn map_ids_of(pid: &str) -> Vec<u32> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        if let Some(l) = info.lines().find(|l| l.starts_with("map_id:")) {
            ids.push(l[7..].trim().parse().unwrap());
        }
    }
    ids
}

pub fn map_fd_by_id(id: u32) -> i32 {
    let mut attr = [0u64; 16];
    attr[0] = u64::from(id);
    let fd = call(MAP_GET_FD_BY_ID, &mut attr);
    assert!(
        fd >= 0,
        "map {id} by id: {}",
        std::io::Error::last_os_error()
    );
    fd as i32
}

pub struct Info {
    pub id: u32,
    pub value_size: u32,
    pub name: Vec<u8>,
}

/// `struct bpf_map_info`: type, id, key_size, value_size, max_entries,
/// map_flags (u32 each), then name[16].
pub fn map_info(fd: i32) -> Info {
    let mut info = [0u8; 88];
    let mut attr = [0u64; 16];
    attr[0] = fd as u32 as u64 | ((info.len() as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    assert_eq!(call(OBJ_GET_INFO_BY_FD, &mut attr), 0, "map info");
    let u = |o: usize| u32::from_le_bytes(info[o..o + 4].try_into().unwrap());
    let name = info[24..40].split(|&b| b == 0).next().unwrap().to_vec();
    Info {
        id: u(4),
        value_size: u(12),
        name,
    }
}

/// Reads key 0 and writes the same value back.
pub fn rewrite_key0(fd: i32) {
    let key = 0u32;
    let mut value = vec![0u8; map_info(fd).value_size as usize];
    let mut attr = [0u64; 16];
    attr[0] = fd as u32 as u64;
    attr[1] = &key as *const u32 as u64;
    attr[2] = value.as_mut_ptr() as u64;
    assert_eq!(call(MAP_LOOKUP_ELEM, &mut attr), 0, "lookup");
    assert_eq!(call(MAP_UPDATE_ELEM, &mut attr), 0, "update");
}

/// A 1-entry array map of u64.
pub fn create_array() -> i32 {
    let mut attr = [0u64; 16];
    // map_type 2 (array), key_size 4; value_size 8, max_entries 1
    attr[0] = 2 | (4 << 32);
    attr[1] = 8 | (1 << 32);
    let fd = call(MAP_CREATE, &mut attr);
    assert!(fd >= 0, "map create: {}", std::io::Error::last_os_error());
    fd as i32
}
