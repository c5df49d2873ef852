//! Zero-initialised buffers backed by transparent huge pages, for the large tables that the hot loops read at
//! random: the classifier's embedding matrix and the decontamination filter.
//!
//! Why: every random row or filter-word read in a table of many 4 KB pages is also a TLB miss, and on a virtual
//! machine each TLB miss is a two-level page walk that costs more than the cache miss itself. Linux hands out
//! 2 MB pages for anonymous memory only where asked (`transparent_hugepage` is usually in `madvise` mode), so the
//! buffer is mapped 2 MB-aligned and advised with `MADV_HUGEPAGE` before the first write. Where that is
//! unavailable the buffer is still correct, just on small pages.

use std::ops::{Deref, DerefMut};

const HUGE_PAGE: usize = 2 << 20;

/// A fixed-length, zero-initialised slice of `T` on huge pages (where the kernel grants them).
pub struct HugeBuf<T: Copy> {
    ptr: *mut T,
    len: usize,
    /// The whole mapping, for `munmap` (the slice starts at its first 2 MB boundary).
    map: *mut libc::c_void,
    map_len: usize,
}

// SAFETY: the buffer owns its mapping exclusively, like a `Vec<T>`.
unsafe impl<T: Copy + Send> Send for HugeBuf<T> {}
// SAFETY: shared access only reads, like `&[T]`.
unsafe impl<T: Copy + Sync> Sync for HugeBuf<T> {}

impl<T: Copy> HugeBuf<T> {
    /// `len` zeroed elements. `T` must be a plain-old-data type for which all-zero bytes are a valid value
    /// (integers, floats).
    pub fn zeroed(len: usize) -> std::io::Result<Self> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| std::io::Error::other("size overflow"))?;
        if bytes == 0 {
            return Ok(Self {
                ptr: std::ptr::NonNull::<T>::dangling().as_ptr(),
                len,
                map: std::ptr::null_mut(),
                map_len: 0,
            });
        }
        // Small buffers stay on small pages: a huge page for a few kilobytes would only waste memory.
        let huge = bytes >= HUGE_PAGE / 2;
        let map_len = if huge {
            bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE
        } else {
            bytes
        };
        // SAFETY: a fresh private anonymous mapping; checked for failure below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut start = map as usize;
        if huge {
            start = start.next_multiple_of(HUGE_PAGE);
            // SAFETY: the advised range lies inside the mapping; the advice is only a hint (errors are ignored).
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    map_len - (start - map as usize),
                    libc::MADV_HUGEPAGE,
                );
            }
        }
        Ok(Self {
            ptr: start as *mut T,
            len,
            map,
            map_len,
        })
    }

    /// A copy of `data` on huge pages.
    pub fn from_slice(data: &[T]) -> std::io::Result<Self> {
        let mut buf = Self::zeroed(data.len())?;
        buf.copy_from_slice(data);
        Ok(buf)
    }
}

impl<T: Copy> Deref for HugeBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialised (zeroed, then written) elements inside the live mapping.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Copy> DerefMut for HugeBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T: Copy> Drop for HugeBuf<T> {
    fn drop(&mut self) {
        if !self.map.is_null() {
            // SAFETY: unmapping exactly the mapping created in `zeroed`.
            unsafe {
                libc::munmap(self.map, self.map_len);
            }
        }
    }
}

impl<T: Copy> Clone for HugeBuf<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self).expect("mapping memory for a copy")
    }
}

impl<T: Copy> Default for HugeBuf<T> {
    fn default() -> Self {
        Self::zeroed(0).expect("an empty buffer maps nothing")
    }
}

impl<T: Copy + PartialEq> PartialEq for HugeBuf<T> {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl<T: Copy> From<Vec<T>> for HugeBuf<T> {
    fn from(v: Vec<T>) -> Self {
        Self::from_slice(&v).expect("mapping memory for a buffer")
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for HugeBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeBuf(len {})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_writable_and_aligned() {
        let mut b = HugeBuf::<u64>::zeroed(300_000).unwrap();
        assert!(b.iter().all(|&x| x == 0));
        b[299_999] = 7;
        assert_eq!(b[299_999], 7);
        assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0);
        let small = HugeBuf::<u8>::from(vec![1, 2, 3]);
        assert_eq!(&small[..], &[1, 2, 3]);
        let c = b.clone();
        assert_eq!(&c[..], &b[..]);
        assert!(HugeBuf::<f32>::zeroed(0).unwrap().is_empty());
    }
}
