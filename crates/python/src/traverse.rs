//! Calling an object's `tp_traverse`: its referents as `gc.get_referents` reports them, as
//! borrowed pointers, without the dead ones. Unsafe CPython access (type slots, traverse calls).

use pyo3::ffi;
use pyo3::prelude::*;
use rustc_hash::FxHashMap;
use std::os::raw::{c_char, c_int, c_void};

/// Per-type facts needed to walk an object, cached by type pointer.
#[derive(Clone, Copy)]
struct TypeFacts {
    traverse: Option<ffi::traverseproc>,
    have_gc: bool,
    is_gc: Option<unsafe extern "C" fn(*mut ffi::PyObject) -> c_int>,
    /// Its instances are classes (`type` or a metaclass).
    classes: bool,
    /// The references it holds that `tp_traverse` does not report, followed by a snapshot's
    /// capture ([`TypeCache::following`]): `offsets[start..start + len]` of the cache.
    members: (u32, u32),
}

/// Which instances of a type are gc objects ([`TypeCache::gc_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GcKind {
    /// None.
    NotGc,
    /// All.
    Gc,
    /// Those that are heap types (instances of `type` or a metaclass: `type`'s `tp_is_gc`).
    HeapTypes,
}

impl GcKind {
    /// Whether `obj`, an instance of a type of this kind, is a gc object. Reads only `obj`'s
    /// type flags when it is a class: any thread may ask.
    ///
    /// # Safety
    /// `obj` is a live object of a type of this kind.
    #[inline]
    pub unsafe fn is_gc(self, obj: *mut ffi::PyObject) -> bool {
        match self {
            GcKind::NotGc => false,
            GcKind::Gc => true,
            GcKind::HeapTypes => {
                ffi::PyType_GetFlags(obj as *mut ffi::PyTypeObject) & ffi::Py_TPFLAGS_HEAPTYPE != 0
            }
        }
    }
}

#[derive(Default)]
pub struct TypeCache {
    facts: FxHashMap<usize, TypeFacts>,
    /// The type asked about last, and its facts (a hash probe per object shows in the capture).
    last: Option<(usize, TypeFacts)>,
    /// The code type, when its objects' members are followed ([`TypeCache::following`]).
    code: Option<usize>,
    /// Offsets of object members, for [`TypeFacts::members`].
    offsets: Vec<isize>,
}

/// The code type's address (`types.CodeType`).
pub fn code_type(py: Python<'_>) -> PyResult<usize> {
    static CODE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    if let Some(&c) = CODE.get() {
        return Ok(c);
    }
    let c = py.import("types")?.getattr("CodeType")?.as_ptr() as usize;
    Ok(*CODE.get_or_init(|| c))
}

impl TypeCache {
    /// A cache whose walks also report what a code object holds: its members that are objects
    /// (constants, names, file name, name, qualified name, line tables, and on 3.10 its bytes
    /// and variable names). A code object is not a gc object (`gc.get_referents` reports
    /// nothing for it), but a snapshot counts what it holds and finds garbage from reference
    /// counts: the collector frees what a code object it frees holds. `code` is
    /// [`code_type`]'s address, or None for a cache that follows `tp_traverse` only.
    pub fn following(code: Option<usize>) -> Self {
        TypeCache {
            code,
            ..Default::default()
        }
    }

    /// The code type this cache follows members of, if it does.
    pub fn follows(&self) -> Option<usize> {
        self.code
    }

    /// # Safety
    /// `tp` must be a live type object and the GIL held.
    #[inline]
    unsafe fn facts(&mut self, tp: *mut ffi::PyTypeObject) -> TypeFacts {
        match self.last {
            Some((t, f)) if t == tp as usize => f,
            _ => {
                let f = self.facts_of(tp);
                self.last = Some((tp as usize, f));
                f
            }
        }
    }

    /// # Safety
    /// As [`TypeCache::facts`].
    unsafe fn facts_of(&mut self, tp: *mut ffi::PyTypeObject) -> TypeFacts {
        if let Some(&f) = self.facts.get(&(tp as usize)) {
            return f;
        }
        let members = if self.code == Some(tp as usize) {
            let start = self.offsets.len();
            let members = object_members(tp);
            self.offsets.extend(members.iter().map(|&(off, _)| off));
            (start as u32, (self.offsets.len() - start) as u32)
        } else {
            (0, 0)
        };
        // PyType_GetSlot works on static types since 3.10.
        let trav = ffi::PyType_GetSlot(tp, ffi::Py_tp_traverse);
        let isgc = ffi::PyType_GetSlot(tp, ffi::Py_tp_is_gc);
        let flags = ffi::PyType_GetFlags(tp);
        let f = TypeFacts {
            traverse: if trav.is_null() {
                None
            } else {
                Some(std::mem::transmute::<*mut c_void, ffi::traverseproc>(trav))
            },
            have_gc: flags & ffi::Py_TPFLAGS_HAVE_GC != 0,
            is_gc: if isgc.is_null() {
                None
            } else {
                Some(std::mem::transmute::<
                    *mut c_void,
                    unsafe extern "C" fn(*mut ffi::PyObject) -> c_int,
                >(isgc))
            },
            classes: flags & ffi::Py_TPFLAGS_TYPE_SUBCLASS != 0,
            members,
        };
        self.facts.insert(tp as usize, f);
        f
    }

    /// How to tell whether an instance of `tp` is a gc object without calling anything:
    /// None when its type has a `tp_is_gc` other than `type`'s.
    ///
    /// # Safety
    /// As [`TypeCache::facts`].
    pub unsafe fn gc_kind(&mut self, tp: *mut ffi::PyTypeObject) -> Option<GcKind> {
        let f = self.facts(tp);
        if !f.have_gc {
            return Some(GcKind::NotGc);
        }
        let Some(is_gc) = f.is_gc else {
            return Some(GcKind::Gc);
        };
        let of_type =
            ffi::PyType_GetSlot(std::ptr::addr_of_mut!(ffi::PyType_Type), ffi::Py_tp_is_gc);
        (is_gc as usize == of_type as usize).then_some(GcKind::HeapTypes)
    }

    /// Whether `obj` is a class (`isinstance(obj, type)`).
    ///
    /// # Safety
    /// `obj` must be a live object and the GIL held.
    #[inline]
    pub unsafe fn is_class(&mut self, obj: *mut ffi::PyObject) -> bool {
        self.facts(ffi::Py_TYPE(obj)).classes
    }

    /// Whether `gc.get_referents(obj)` would traverse `obj` (the `PyObject_IS_GC` test).
    ///
    /// # Safety
    /// `obj` must be a live object and the GIL held.
    pub unsafe fn is_gc(&mut self, obj: *mut ffi::PyObject) -> bool {
        let f = self.facts(ffi::Py_TYPE(obj));
        f.have_gc && f.is_gc.is_none_or(|is_gc| is_gc(obj) != 0)
    }

    /// Append `obj`'s referents, in `tp_traverse` order, to `out`, if it is a gc object.
    ///
    /// # Safety
    /// `obj` must be a live object and the GIL held; no Python code may run until `out` is
    /// consumed (the pointers are borrowed).
    pub unsafe fn referents(&mut self, obj: *mut ffi::PyObject, out: &mut Vec<*mut ffi::PyObject>) {
        self.traverse_with(
            obj,
            visit,
            out as *mut Vec<*mut ffi::PyObject> as *mut c_void,
        );
    }

    /// Call `obj`'s `tp_traverse` with `visitor` and `arg`, if it is a gc object.
    ///
    /// # Safety
    /// `obj` must be a live object and the GIL held; `visitor` must be sound for `arg`.
    #[inline]
    pub unsafe fn traverse_with(
        &mut self,
        obj: *mut ffi::PyObject,
        visitor: ffi::visitproc,
        arg: *mut c_void,
    ) {
        let f = self.facts(ffi::Py_TYPE(obj));
        if !(f.have_gc && f.is_gc.is_none_or(|is_gc| is_gc(obj) != 0)) {
            let (start, len) = f.members;
            for &off in &self.offsets[start as usize..(start + len) as usize] {
                // SAFETY (the caller's, and): an offset of an object member of this type,
                // within its fixed part, holding a reference or NULL.
                let member = *((obj as *const u8).offset(off) as *const *mut ffi::PyObject);
                if !member.is_null() {
                    visitor(member, arg);
                }
            }
            return;
        }
        if let Some(trav) = f.traverse {
            trav(obj, visitor, arg);
        }
    }
}

/// `tp`'s own members that hold objects (`Py_T_OBJECT` or `Py_T_OBJECT_EX`, at an absolute,
/// word-aligned offset past the object header): their offsets and names.
///
/// # Safety
/// `tp` is a live type whose `tp_members` (a static or type-owned array ending with a NULL
/// name, or none) describe its instances; the GIL is held. The names live as long as `tp`.
pub unsafe fn object_members(tp: *mut ffi::PyTypeObject) -> Vec<(isize, *const c_char)> {
    const WORD: isize = std::mem::size_of::<usize>() as isize;
    let mut out = Vec::new();
    let m = ffi::PyType_GetSlot(tp, ffi::Py_tp_members) as *const ffi::PyMemberDef;
    if m.is_null() {
        ffi::PyErr_Clear();
        return out;
    }
    let mut j = 0;
    loop {
        let def = &*m.add(j);
        if def.name.is_null() {
            return out;
        }
        j += 1;
        #[allow(deprecated)]
        let object = def.type_code == ffi::Py_T_OBJECT_EX || def.type_code == ffi::_Py_T_OBJECT;
        if object
            && def.flags & crate::cpython::PY_RELATIVE_OFFSET == 0
            && def.offset >= 2 * WORD
            && def.offset % WORD == 0
        {
            out.push((def.offset, def.name));
        }
    }
}

/// The `tp_traverse` visitor of every walk: records each referent that is alive.
///
/// A referent whose reference count is 0 is not alive: it is never recorded, so no reference
/// is ever taken to it. Some traverse functions report such objects: CPython 3.12.0-3.12.5's
/// `_asyncio` module visits its free list of `FutureIter`s (gh-122695); taking a reference to
/// one and dropping it deallocates it a second time, which corrupts the free list (a hang in
/// the next `gc.collect()`) or the heap. Reading the count is safe: the memory of a free-list
/// entry stays allocated.
unsafe extern "C" fn visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // Py_VISIT never passes NULL, but be defensive.
    if !obj.is_null() && ffi::Py_REFCNT(obj) > 0 {
        (*(arg as *mut Vec<*mut ffi::PyObject>)).push(obj);
    }
    0
}

unsafe extern "C" fn count_visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // Counted like `visit` records: live referents only.
    if !obj.is_null() && ffi::Py_REFCNT(obj) > 0 {
        *(arg as *mut u64) += 1;
    }
    0
}

/// Call `tp_traverse` with `visitor` on every tracked object (as `gc.get_referents` would), the
/// visitor adding to one counter; returns the count.
fn count_over_heap(py: Python<'_>, visitor: ffi::visitproc) -> PyResult<u64> {
    let list = crate::gcwalk::gc_objects(py)?;
    let mut cache = TypeCache::default();
    let mut count = 0u64;
    // SAFETY: GIL held, the list holds every item, no Python code runs in the loop; the visitors
    // only read the referent's reference count (a dead free-list entry's memory is allocated).
    unsafe {
        let lp = list.as_ptr();
        for i in 0..list.len() {
            let obj = ffi::PyList_GetItem(lp, i as ffi::Py_ssize_t);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            let f = cache.facts(ffi::Py_TYPE(obj));
            if !(f.have_gc && f.is_gc.is_none_or(|is_gc| is_gc(obj) != 0)) {
                continue;
            }
            if let Some(trav) = f.traverse {
                trav(obj, visitor, &mut count as *mut u64 as *mut c_void);
            }
        }
    }
    Ok(count)
}

/// One `tp_traverse` pass over `gc.get_objects()` that only counts references: the floor the
/// capture is measured against in the benchmark. Returns the number of live references.
#[pyfunction]
pub fn traverse_pass(py: Python<'_>) -> PyResult<u64> {
    count_over_heap(py, count_visit)
}

unsafe extern "C" fn dead_visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    if !obj.is_null() && ffi::Py_REFCNT(obj) <= 0 {
        *(arg as *mut u64) += 1;
    }
    0
}

/// How many referents that are not alive (reference count 0) the traverse functions of the
/// tracked objects report now. Always 0 on a sound interpreter; on CPython 3.12.0-3.12.5 after
/// asyncio has run, the `_asyncio` free list (gh-122695). The capture skips them; `gc` does not:
/// `gc.get_referents` of their holder hands them out (what makes objgraph hang then).
#[pyfunction]
pub fn dead_referents(py: Python<'_>) -> PyResult<u64> {
    count_over_heap(py, dead_visit)
}
