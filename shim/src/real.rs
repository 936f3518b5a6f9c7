//! The real functions behind the hooks: each looked up once with `dlsym(RTLD_NEXT)` and kept
//! in an atomic, so a hook costs one load after the first call. A symbol the C library does not
//! have makes the hook fail with `ENOSYS` (never a crash).

use std::sync::atomic::{AtomicUsize, Ordering};

/// One real symbol: its NUL-terminated name and, once looked up, its address.
pub struct Sym {
    name: &'static [u8],
    addr: AtomicUsize,
}

impl Sym {
    pub const fn new(name: &'static [u8]) -> Sym {
        Sym {
            name,
            addr: AtomicUsize::new(0),
        }
    }

    /// The address of the next definition of the symbol after this library's.
    pub fn get(&self) -> Option<usize> {
        let a = self.addr.load(Ordering::Relaxed);
        if a != 0 {
            return Some(a);
        }
        // SAFETY: the name is a static NUL-terminated string; dlsym only reads it. Racing
        // threads store the same address.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr().cast()) } as usize;
        if p == 0 {
            return None;
        }
        self.addr.store(p, Ordering::Relaxed);
        Some(p)
    }
}

/// Set `errno`.
pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = e }
}

/// This thread's `errno`.
pub fn errno() -> i32 {
    // SAFETY: as in `set_errno`.
    unsafe { *libc::__errno_location() }
}

/// Declare `pub unsafe fn NAME(args) -> ret` calling the real `NAME`; `$fail` is what it
/// returns (with errno ENOSYS) when the symbol is missing.
macro_rules! reals {
    ($( $name:ident ( $($a:ident : $t:ty),* ) -> $r:ty, $fail:expr; )*) => {
        $(
            #[allow(non_upper_case_globals)]
            pub unsafe fn $name($($a: $t),*) -> $r {
                static SYM: Sym = Sym::new(concat!(stringify!($name), "\0").as_bytes());
                match SYM.get() {
                    Some(addr) => {
                        // SAFETY: the address is the C library's definition of this very
                        // function, whose C prototype is the one declared here.
                        let f: unsafe extern "C" fn($($t),*) -> $r =
                            unsafe { std::mem::transmute::<usize, _>(addr) };
                        unsafe { f($($a),*) }
                    }
                    None => {
                        set_errno(libc::ENOSYS);
                        $fail
                    }
                }
            }
        )*
    };
}

use libc::{FILE, c_char, c_int, c_long, c_uint, dev_t, gid_t, mode_t, off_t, timespec, uid_t};

reals! {
    open(p: *const c_char, f: c_int, m: mode_t) -> c_int, -1;
    open64(p: *const c_char, f: c_int, m: mode_t) -> c_int, -1;
    __open_2(p: *const c_char, f: c_int) -> c_int, -1;
    __open64_2(p: *const c_char, f: c_int) -> c_int, -1;
    openat(d: c_int, p: *const c_char, f: c_int, m: mode_t) -> c_int, -1;
    openat64(d: c_int, p: *const c_char, f: c_int, m: mode_t) -> c_int, -1;
    __openat_2(d: c_int, p: *const c_char, f: c_int) -> c_int, -1;
    __openat64_2(d: c_int, p: *const c_char, f: c_int) -> c_int, -1;
    creat(p: *const c_char, m: mode_t) -> c_int, -1;
    creat64(p: *const c_char, m: mode_t) -> c_int, -1;
    fopen(p: *const c_char, m: *const c_char) -> *mut FILE, std::ptr::null_mut();
    fopen64(p: *const c_char, m: *const c_char) -> *mut FILE, std::ptr::null_mut();
    freopen(p: *const c_char, m: *const c_char, s: *mut FILE) -> *mut FILE, std::ptr::null_mut();
    freopen64(p: *const c_char, m: *const c_char, s: *mut FILE) -> *mut FILE, std::ptr::null_mut();
    rename(a: *const c_char, b: *const c_char) -> c_int, -1;
    renameat(da: c_int, a: *const c_char, db: c_int, b: *const c_char) -> c_int, -1;
    renameat2(da: c_int, a: *const c_char, db: c_int, b: *const c_char, f: c_uint) -> c_int, -1;
    syscall(n: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long, a5: c_long, a6: c_long) -> c_long, -1;
    link(a: *const c_char, b: *const c_char) -> c_int, -1;
    linkat(da: c_int, a: *const c_char, db: c_int, b: *const c_char, f: c_int) -> c_int, -1;
    symlink(a: *const c_char, b: *const c_char) -> c_int, -1;
    symlinkat(a: *const c_char, d: c_int, b: *const c_char) -> c_int, -1;
    mkdir(p: *const c_char, m: mode_t) -> c_int, -1;
    mkdirat(d: c_int, p: *const c_char, m: mode_t) -> c_int, -1;
    unlink(p: *const c_char) -> c_int, -1;
    unlinkat(d: c_int, p: *const c_char, f: c_int) -> c_int, -1;
    rmdir(p: *const c_char) -> c_int, -1;
    remove(p: *const c_char) -> c_int, -1;
    chmod(p: *const c_char, m: mode_t) -> c_int, -1;
    fchmod(fd: c_int, m: mode_t) -> c_int, -1;
    fchmodat(d: c_int, p: *const c_char, m: mode_t, f: c_int) -> c_int, -1;
    chown(p: *const c_char, u: uid_t, g: gid_t) -> c_int, -1;
    lchown(p: *const c_char, u: uid_t, g: gid_t) -> c_int, -1;
    fchown(fd: c_int, u: uid_t, g: gid_t) -> c_int, -1;
    fchownat(d: c_int, p: *const c_char, u: uid_t, g: gid_t, f: c_int) -> c_int, -1;
    truncate(p: *const c_char, l: off_t) -> c_int, -1;
    truncate64(p: *const c_char, l: off_t) -> c_int, -1;
    ftruncate(fd: c_int, l: off_t) -> c_int, -1;
    ftruncate64(fd: c_int, l: off_t) -> c_int, -1;
    mknod(p: *const c_char, m: mode_t, d: dev_t) -> c_int, -1;
    mknodat(dfd: c_int, p: *const c_char, m: mode_t, d: dev_t) -> c_int, -1;
    utimensat(d: c_int, p: *const c_char, t: *const timespec, f: c_int) -> c_int, -1;
    futimens(fd: c_int, t: *const timespec) -> c_int, -1;
}
