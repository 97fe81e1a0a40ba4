/* Optional compiled helpers for flowstage._hash (see that module's docstring) and
 * for the process executor's frames (flowstage/executors/process/_text.py).
 *
 * Everything here has a pure-Python reference in those modules, which is the
 * contract: the partition a key lands in, and what a batch of text becomes, must
 * be identical with and without this module. The module is optional: when it is missing (not built, or
 * FLOWSTAGE_NO_EXTENSIONS is set), flowstage runs the Python code.
 *
 * buckets(events, keys, n) -> list[list] | None
 *     The events of each partition 0 .. n-1 in arrival order, where an event's
 *     partition is zlib.crc32(key.encode("utf-8", "surrogatepass")) % n and key is
 *     the event itself (keys is None) or keys[i]. Returns None, so that the caller
 *     takes the Python path, when events (or keys) is not exactly a list or when a
 *     key is not a str (str subclasses hash the value they hold, like str.encode).
 *
 * str_crc32(s) -> int
 *     zlib.crc32(s.encode("utf-8", "surrogatepass")) for a str (tests use it).
 *
 * join_sized(batch) -> (bytes | str, bytes) | None
 *     (joined, lengths) when batch is exactly a list whose items are all exactly
 *     str, lengths holding each item's length as a native uint32; joined is
 *     "".join(batch).encode("latin-1") when every item is Latin-1 (no code point
 *     above 255: their bytes, copied once, and bytes pickle without a copy), else
 *     "".join(batch). Otherwise None.
 *
 * split_sized(text, lengths, cache=None) -> list[str]
 *     text (a str, or bytes read as Latin-1) cut into consecutive pieces of those
 *     lengths: an equal list, item for item and type for type, of the batch
 *     join_sized joined. With a cache (a list of a power-of-two length the caller
 *     keeps), a piece of 2 to 32 characters equal to the str in the slot its hash
 *     picks reuses that str; otherwise the new str takes the slot (bounded: one
 *     str per slot). A batch whose first 16 pieces looked up found fewer than 2
 *     cuts the rest without the cache.
 *
 * join_pairs(batch) -> (str, bytes, bytes) | None
 *     For a batch of (key, value) pairs, exactly a list of exact 2-tuples of an
 *     exact str and an exact int that fits in 64 bits: the keys joined, their
 *     lengths (native uint32) and the values (native int64); otherwise None.
 *
 * split_pairs(text, lengths, values) -> list[tuple[str, int]]
 *     The pairs join_pairs took apart: an equal list, item for item and type for
 *     type; the pairs are not tracked by the cyclic GC (they cannot be in a cycle).
 *
 * The UTF-8 encoding ("surrogatepass": a lone surrogate is encoded as its 3-byte
 * form, like any other code point of the BMP) and CRC-32 (the zlib/IEEE 802.3
 * polynomial) are computed here, without allocating and without touching the
 * str's cached UTF-8, so no system zlib is linked and no Python code can run
 * while a batch is bucketed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- CRC-32, bit-identical to zlib.crc32 (reflected 0xEDB88320, slice-by-8) ---- */

static uint32_t crc_table[8][256];
static int crc_table_ready = 0;

static void
crc_table_init(void)
{
    if (crc_table_ready) {
        return;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xffu] ^ (c >> 8);
            crc_table[t][i] = c;
        }
    }
    crc_table_ready = 1;
}

/* Feed len bytes into the (pre-inverted) CRC register c. */
static inline uint32_t
crc_update(uint32_t c, const unsigned char *p, size_t len)
{
    while (len >= 8) {
        uint32_t a = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                          (uint32_t)p[3] << 24);
        uint32_t b = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                     (uint32_t)p[7] << 24;
        c = crc_table[7][a & 0xffu] ^ crc_table[6][(a >> 8) & 0xffu] ^
            crc_table[5][(a >> 16) & 0xffu] ^ crc_table[4][a >> 24] ^
            crc_table[3][b & 0xffu] ^ crc_table[2][(b >> 8) & 0xffu] ^
            crc_table[1][(b >> 16) & 0xffu] ^ crc_table[0][b >> 24];
        p += 8;
        len -= 8;
    }
    if (len >= 4) { /* slice-by-4 with the same tables: short keys are the common case */
        uint32_t a = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                          (uint32_t)p[3] << 24);
        c = crc_table[3][a & 0xffu] ^ crc_table[2][(a >> 8) & 0xffu] ^
            crc_table[1][(a >> 16) & 0xffu] ^ crc_table[0][a >> 24];
        p += 4;
        len -= 4;
    }
    while (len--) {
        c = crc_table[0][(c ^ *p++) & 0xffu] ^ (c >> 8);
    }
    return c;
}

/* ---- crc32 of a str's UTF-8 encoding with "surrogatepass" ---- */

#define UTF8_CHUNK 256

/* Encode one code point (< 0x110000) at buf + used; return the new used. */
static inline size_t
put_utf8(unsigned char *buf, size_t used, Py_UCS4 ch)
{
    if (ch < 0x80) {
        buf[used++] = (unsigned char)ch;
    }
    else if (ch < 0x800) {
        buf[used++] = (unsigned char)(0xC0 | (ch >> 6));
        buf[used++] = (unsigned char)(0x80 | (ch & 0x3F));
    }
    else if (ch < 0x10000) { /* includes lone surrogates: "surrogatepass" */
        buf[used++] = (unsigned char)(0xE0 | (ch >> 12));
        buf[used++] = (unsigned char)(0x80 | ((ch >> 6) & 0x3F));
        buf[used++] = (unsigned char)(0x80 | (ch & 0x3F));
    }
    else {
        buf[used++] = (unsigned char)(0xF0 | (ch >> 18));
        buf[used++] = (unsigned char)(0x80 | ((ch >> 12) & 0x3F));
        buf[used++] = (unsigned char)(0x80 | ((ch >> 6) & 0x3F));
        buf[used++] = (unsigned char)(0x80 | (ch & 0x3F));
    }
    return used;
}

#define ENCODE_LOOP(TYPE)                                        \
    do {                                                         \
        const TYPE *src = (const TYPE *)data;                    \
        for (Py_ssize_t i = 0; i < len; i++) {                   \
            if (used > UTF8_CHUNK - 4) {                         \
                c = crc_update(c, buf, used);                    \
                used = 0;                                        \
            }                                                    \
            used = put_utf8(buf, used, (Py_UCS4)src[i]);         \
        }                                                        \
    } while (0)

/* s must be a ready str (exact or subclass). Never fails, never allocates. */
static uint32_t
str_crc32(PyObject *s)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    const void *data = PyUnicode_DATA(s);
    if (PyUnicode_IS_ASCII(s)) {
        /* ASCII is its own UTF-8. */
        return ~crc_update(0xFFFFFFFFu, (const unsigned char *)data, (size_t)len);
    }
    unsigned char buf[UTF8_CHUNK];
    size_t used = 0;
    uint32_t c = 0xFFFFFFFFu;
    switch (PyUnicode_KIND(s)) {
    case PyUnicode_1BYTE_KIND:
        ENCODE_LOOP(Py_UCS1);
        break;
    case PyUnicode_2BYTE_KIND:
        ENCODE_LOOP(Py_UCS2);
        break;
    default:
        ENCODE_LOOP(Py_UCS4);
        break;
    }
    return ~crc_update(c, buf, used);
}

/* 0 when s is a str whose data can be read; -1 with an exception set otherwise. */
static inline int
ensure_ready(PyObject *s)
{
#if PY_VERSION_HEX < 0x030C0000
    /* Only strings made by the deprecated wstr APIs are not ready (3.11 and older). */
    return PyUnicode_READY(s);
#else
    (void)s;
    return 0;
#endif
}

/* ---- module functions ---- */

PyDoc_STRVAR(str_crc32_doc,
"str_crc32(s, /)\n--\n\n"
"zlib.crc32(s.encode('utf-8', 'surrogatepass')) for a str s (or a str subclass,\n"
"whose value is hashed).");

static PyObject *
py_str_crc32(PyObject *module, PyObject *s)
{
    (void)module;
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "str_crc32() argument must be str, not %.200s",
                     Py_TYPE(s)->tp_name);
        return NULL;
    }
    if (ensure_ready(s) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLong((unsigned long)str_crc32(s));
}

PyDoc_STRVAR(buckets_doc,
"buckets(events, keys, n, /)\n--\n\n"
"Split events into n lists by zlib.crc32(key.encode('utf-8', 'surrogatepass')) % n,\n"
"each list in arrival order. key is the event itself when keys is None, else\n"
"keys[i] (a list as long as events). Return None when events or keys is not\n"
"exactly a list or when a key is not a str: the caller then takes its general\n"
"path. Raise ValueError when n < 1 or the lengths differ.");

static PyObject *
py_buckets(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "buckets() takes exactly 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    PyObject *events = args[0];
    PyObject *keys = args[1];
    if (!PyLong_Check(args[2])) {
        PyErr_Format(PyExc_TypeError, "buckets() n must be an int, not %.200s",
                     Py_TYPE(args[2])->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 1) {
        PyErr_Format(PyExc_ValueError,
                     "the number of partitions must be >= 1, got: %zd", n);
        return NULL;
    }
    if (!PyList_CheckExact(events)) {
        Py_RETURN_NONE;
    }
    if (keys == Py_None) {
        keys = events;
    }
    else if (!PyList_CheckExact(keys)) {
        Py_RETURN_NONE;
    }
    else if (PyList_GET_SIZE(keys) != PyList_GET_SIZE(events)) {
        PyErr_Format(PyExc_ValueError,
                     "buckets() got %zd keys for %zd events",
                     PyList_GET_SIZE(keys), PyList_GET_SIZE(events));
        return NULL;
    }

    /* Pass 1 takes a snapshot: a new reference to every event and its partition,
     * with no Python code run (no allocation of GC-tracked objects, no calls into
     * user types), so the lists cannot change under it. Pass 2 allocates each
     * partition's list at its final size and moves the references in: a finalizer
     * run by those allocations may change the input lists, not the snapshot. */
    const Py_ssize_t size = PyList_GET_SIZE(events);
    PyObject **items = PyMem_Malloc((size_t)(size > 0 ? size : 1) * sizeof(PyObject *));
    uint32_t *parts = PyMem_Malloc((size_t)(size > 0 ? size : 1) * sizeof(uint32_t));
    Py_ssize_t *counts = PyMem_Calloc((size_t)n, sizeof(Py_ssize_t));
    if (items == NULL || parts == NULL || counts == NULL) {
        PyMem_Free(items);
        PyMem_Free(parts);
        PyMem_Free(counts);
        return PyErr_NoMemory();
    }

    /* crc32 values are < 2**32: a modulus at or above that never reduces them. */
    const uint64_t n64 = (uint64_t)n;
    const int pow2 = (n64 & (n64 - 1)) == 0;
    const uint32_t mask = pow2 && n64 <= 0xFFFFFFFFu ? (uint32_t)(n64 - 1) : 0xFFFFFFFFu;
    const uint32_t n32 = n64 > 0xFFFFFFFFu ? 0 : (uint32_t)n64;

    /* Exit paths share one clean-up: the references still owned (the first
     * `taken` of the snapshot) are released; result is the list, None (a key that
     * is not a str: the caller takes its general path) or NULL (an error). */
    PyObject *result = NULL;
    Py_ssize_t taken = 0;
    for (; taken < size; taken++) {
        PyObject *key = PyList_GET_ITEM(keys, taken);
        if (!PyUnicode_Check(key) || ensure_ready(key) < 0) {
            PyErr_Clear(); /* only ensure_ready sets one */
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
        uint32_t h = str_crc32(key);
        uint32_t p = (pow2 || n32 == 0) ? (h & mask) : h % n32;
        parts[taken] = p;
        counts[p]++;
        PyObject *item = PyList_GET_ITEM(events, taken);
        Py_INCREF(item);
        items[taken] = item;
    }

    result = PyList_New(n);
    if (result == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *lst = PyList_New(counts[i]);
        if (lst == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, lst);
        counts[i] = 0; /* from here on: how many each list holds so far */
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        uint32_t p = parts[i];
        PyList_SET_ITEM(PyList_GET_ITEM(result, p), counts[p]++, items[i]); /* steals */
    }
    taken = 0; /* every reference moved into a list */

done:
    for (Py_ssize_t i = 0; i < taken; i++) {
        Py_DECREF(items[i]);
    }
    PyMem_Free(items);
    PyMem_Free(parts);
    PyMem_Free(counts);
    return result;
}

/* ---- text batches as one string and the lengths of its items ---- */

PyDoc_STRVAR(join_sized_doc,
"join_sized(batch, /)\n--\n\n"
"(joined, lengths) when batch is exactly a list of exact str, where lengths holds\n"
"len(item) of every item as a native uint32 and joined is ''.join(batch) encoded\n"
"as Latin-1 (bytes) when every item is (every code point below 256), else that\n"
"str; otherwise None.");

static PyObject *
py_join_sized(PyObject *module, PyObject *batch)
{
    (void)module;
    if (!PyList_CheckExact(batch)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(batch);
    PyObject *lengths = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(uint32_t));
    if (lengths == NULL) {
        return NULL;
    }
    /* No Python code runs in these loops (bytes are not GC-tracked): the list
     * cannot change under them. */
    uint32_t *out = (uint32_t *)PyBytes_AS_STRING(lengths);
    int narrow = 1; /* every item's code points fit in one byte */
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(batch, i);
        if (!PyUnicode_CheckExact(item)) {
            Py_DECREF(lengths);
            Py_RETURN_NONE;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(item);
        if (len > (Py_ssize_t)UINT32_MAX) {
            Py_DECREF(lengths);
            Py_RETURN_NONE;
        }
        out[i] = (uint32_t)len;
        total += len;
        narrow &= PyUnicode_KIND(item) == PyUnicode_1BYTE_KIND;
    }
    PyObject *joined;
    if (narrow) {
        /* The items' own bytes, one after the other: no str to build, and a bytes
         * object that pickle writes out without copying it (see _channel.py). */
        joined = PyBytes_FromStringAndSize(NULL, total);
        if (joined == NULL) {
            Py_DECREF(lengths);
            return NULL;
        }
        char *dest = PyBytes_AS_STRING(joined);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyList_GET_ITEM(batch, i);
            memcpy(dest, PyUnicode_DATA(item), (size_t)out[i]);
            dest += out[i];
        }
    }
    else {
        PyObject *empty = PyUnicode_New(0, 0);
        if (empty == NULL) {
            Py_DECREF(lengths);
            return NULL;
        }
        joined = PyUnicode_Join(empty, batch);
        Py_DECREF(empty);
        if (joined == NULL) {
            Py_DECREF(lengths);
            return NULL;
        }
    }
    PyObject *result = PyTuple_Pack(2, joined, lengths);
    Py_DECREF(joined);
    Py_DECREF(lengths);
    return result;
}

/* The n native uint32 lengths in `lengths` that cut a text of text_length
 * characters into consecutive pieces (for split_sized and split_pairs, named `name`
 * in errors): NULL with ValueError when a length is partial or they do not add up
 * to text_length. */
static const uint32_t *
lengths_of(const char *name, Py_ssize_t text_length, PyObject *lengths, Py_ssize_t *n)
{
    Py_ssize_t nbytes = PyBytes_GET_SIZE(lengths);
    if (nbytes % (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_Format(PyExc_ValueError, "%s() got a partial length", name);
        return NULL;
    }
    *n = nbytes / (Py_ssize_t)sizeof(uint32_t);
    const uint32_t *in = (const uint32_t *)PyBytes_AS_STRING(lengths);
    Py_ssize_t sum = 0;
    for (Py_ssize_t i = 0; i < *n; i++) {
        sum += (Py_ssize_t)in[i];
    }
    if (sum != text_length) {
        PyErr_Format(PyExc_ValueError, "%s() got lengths that do not add up", name);
        return NULL;
    }
    return in;
}

/* ---- reusing the str objects of short pieces (split_sized's cache) ---- */

/* Pieces up to this many characters are looked up in a cache. */
#define PIECE_MAX 32
/* A batch whose first PIECE_PROBE pieces looked up found fewer than PIECE_MIN_HITS
 * in the cache (strings that do not repeat: identifiers, say) cuts the rest without
 * it: a miss costs a hash and a lookup on top of making the str. */
#define PIECE_PROBE 16
#define PIECE_MIN_HITS 2

/* FNV-1a over the piece's code points (the same value whatever the kind of the
 * text it is cut from). */
static uint32_t
piece_hash(int kind, const void *data, Py_ssize_t start, Py_ssize_t len)
{
    uint32_t h = 2166136261u;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = (const Py_UCS1 *)data + start;
        for (Py_ssize_t i = 0; i < len; i++) {
            h = (h ^ p[i]) * 16777619u;
        }
    }
    else {
        for (Py_ssize_t i = 0; i < len; i++) {
            h = (h ^ PyUnicode_READ(kind, data, start + i)) * 16777619u;
        }
    }
    return h ^ (h >> 16);
}

/* Whether the str `cached` holds exactly the code points text[start:start+len]. */
static int
piece_equal(PyObject *cached, int kind, const void *data, Py_ssize_t start, Py_ssize_t len)
{
    if (PyUnicode_GET_LENGTH(cached) != len) {
        return 0;
    }
    int ckind = PyUnicode_KIND(cached);
    const void *cdata = PyUnicode_DATA(cached);
    if (ckind == kind) {
        return memcmp(cdata, (const char *)data + start * kind, (size_t)len * (size_t)kind) == 0;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        if (PyUnicode_READ(ckind, cdata, i) != PyUnicode_READ(kind, data, start + i)) {
            return 0;
        }
    }
    return 1;
}

/* Whether the n bytes at p are all ASCII (below 0x80), eight at a time. */
static int
all_ascii(const char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, sizeof(word));
        if (word & UINT64_C(0x8080808080808080)) {
            return 0;
        }
    }
    for (; i < n; i++) {
        if ((unsigned char)p[i] & 0x80u) {
            return 0;
        }
    }
    return 1;
}

/* text[start:start+len] as a new str: of a str, its substring; of bytes (kind 1,
 * text NULL), those bytes read as Latin-1. `ascii` says the bytes are all ASCII
 * (checked once for the whole text): the str is then made and filled directly,
 * without PyUnicode_FromKindAndData's scan for the widest character. A single
 * character still goes through it, for the interpreter's shared one-character
 * strings. */
static PyObject *
cut(PyObject *text, int kind, const void *data, Py_ssize_t start, Py_ssize_t len, int ascii)
{
    if (text == NULL) {
        if (ascii && len > 1) {
            PyObject *made = PyUnicode_New(len, 127);
            if (made != NULL) {
                memcpy(PyUnicode_DATA(made), (const char *)data + start, (size_t)len);
            }
            return made;
        }
        return PyUnicode_FromKindAndData(kind, (const char *)data + start, len);
    }
    return PyUnicode_Substring(text, start, start + len);
}

/* The cache slot of a piece of len characters at start: -1 when it is not looked
 * up (shorter than 2 or longer than PIECE_MAX). */
static Py_ssize_t
piece_slot(int kind, const void *data, Py_ssize_t start, Py_ssize_t len, size_t mask)
{
    if (len < 2 || len > PIECE_MAX) {
        return -1;
    }
    return (Py_ssize_t)(piece_hash(kind, data, start, len) & mask);
}

/* The cache's slots and strings are spread over more memory than the processor's
 * first caches hold: a lookup that waits for each would stall on almost every
 * word. split_sized hashes PIECE_AHEAD_SLOT pieces ahead and asks for their slots,
 * and PIECE_AHEAD_OBJ ahead asks for the string a slot holds, so both are usually
 * there when the piece's turn comes (a prefetch is only a hint: it never faults,
 * and what a slot holds is read again, under the size check, when it is used). */
#define PIECE_AHEAD_SLOT 16
#define PIECE_AHEAD_OBJ 8
#define PIECE_RING 32 /* a power of two above PIECE_AHEAD_SLOT */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)(address))
#endif

/* text[start:start+len] as a new reference. With a cache (a list whose length is a
 * power of two), a piece of 2..PIECE_MAX characters is looked up in `slot`, the one
 * its hash picks (see piece_slot; -1 for any other piece): an equal str there is
 * returned (another reference to it), otherwise the new str replaces what the slot
 * held. Replacing what is not a str (a list the caller filled with something else)
 * may run Python code that resizes the list: py_split_sized checks its length
 * before every piece. */
static PyObject *
piece(PyObject *text, int kind, const void *data, Py_ssize_t start, Py_ssize_t len,
      int ascii, PyObject *cache, Py_ssize_t slot, Py_ssize_t *looked, Py_ssize_t *hits)
{
    if (cache == NULL || slot < 0) {
        return cut(text, kind, data, start, len, ascii);
    }
    (*looked)++;
    PyObject *cached = PyList_GET_ITEM(cache, slot);
    if (PyUnicode_CheckExact(cached) && piece_equal(cached, kind, data, start, len)) {
        (*hits)++;
        Py_INCREF(cached);
        return cached;
    }
    PyObject *made = cut(text, kind, data, start, len, ascii);
    if (made == NULL) {
        return NULL;
    }
    Py_INCREF(made);
    PyList_SET_ITEM(cache, slot, made);
    Py_DECREF(cached);
    return made;
}

PyDoc_STRVAR(split_sized_doc,
"split_sized(text, lengths, cache=None, /)\n--\n\n"
"The items join_sized joined: text (a str, or bytes read as Latin-1) cut into\n"
"consecutive pieces of the native uint32 lengths in lengths. ValueError when the\n"
"lengths do not add up to len(text).\n"
"\n"
"cache, when given, is a list whose length is a power of two, owned by the caller\n"
"and kept between calls: a piece of 2 to 32 characters equal to the str in the\n"
"slot its hash picks is that str (another reference to it), otherwise the new str\n"
"replaces what the slot held. The list is equal either way; repeated short pieces\n"
"(the words of a text) share one object, whose hash is computed once. A batch whose\n"
"first 16 pieces looked up found fewer than 2 cuts the rest without the cache.");

static PyObject *
py_split_sized(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 && nargs != 3) {
        PyErr_Format(PyExc_TypeError, "split_sized() takes 2 or 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    PyObject *text = args[0];
    PyObject *lengths = args[1];
    PyObject *cache = nargs == 3 && args[2] != Py_None ? args[2] : NULL;
    int narrow = PyBytes_CheckExact(text);
    if (!(narrow || PyUnicode_CheckExact(text)) || !PyBytes_CheckExact(lengths)) {
        PyErr_SetString(PyExc_TypeError, "split_sized() expects a str or bytes, and bytes");
        return NULL;
    }
    size_t mask = 0;
    if (cache != NULL) {
        if (!PyList_CheckExact(cache)) {
            PyErr_SetString(PyExc_TypeError, "split_sized() expects None or a list as cache");
            return NULL;
        }
        Py_ssize_t slots = PyList_GET_SIZE(cache);
        if (slots < 1 || (slots & (slots - 1)) != 0) {
            PyErr_Format(PyExc_ValueError,
                         "split_sized() needs a cache whose length is a power of two, "
                         "got %zd",
                         slots);
            return NULL;
        }
        mask = (size_t)slots - 1;
    }
    Py_ssize_t n;
    Py_ssize_t text_length = narrow ? PyBytes_GET_SIZE(text) : PyUnicode_GET_LENGTH(text);
    const uint32_t *in = lengths_of("split_sized", text_length, lengths, &n);
    if (in == NULL) {
        return NULL;
    }
    PyObject *result = PyList_New(n);
    if (result == NULL) {
        return NULL;
    }
    /* Bytes are read as Latin-1: one byte a code point, as a 1-byte-kind str. */
    int kind = narrow ? PyUnicode_1BYTE_KIND : PyUnicode_KIND(text);
    const void *data = narrow ? (const void *)PyBytes_AS_STRING(text) : PyUnicode_DATA(text);
    PyObject *source = narrow ? NULL : text;
    int ascii = narrow && all_ascii((const char *)data, text_length);
    Py_ssize_t start = 0;
    Py_ssize_t looked = 0;
    Py_ssize_t hits = 0;
    Py_ssize_t ring[PIECE_RING]; /* the slots of pieces i .. i + PIECE_AHEAD_SLOT */
    Py_ssize_t hashed = 0;       /* pieces whose slot is in the ring (or was) */
    Py_ssize_t hashed_start = 0; /* where the next piece to hash starts */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len = (Py_ssize_t)in[i];
        Py_ssize_t slot = -1;
        if (cache != NULL) {
            if ((size_t)PyList_GET_SIZE(cache) != mask + 1) {
                PyErr_SetString(PyExc_RuntimeError, "split_sized() cache changed size");
                Py_DECREF(result);
                return NULL;
            }
            if (looked == PIECE_PROBE && hits < PIECE_MIN_HITS) {
                cache = NULL; /* these strings do not repeat: cut the rest directly */
            }
        }
        if (cache != NULL) {
            PyObject **slots = ((PyListObject *)cache)->ob_item;
            for (; hashed < n && hashed <= i + PIECE_AHEAD_SLOT; hashed++) {
                Py_ssize_t ahead_len = (Py_ssize_t)in[hashed];
                Py_ssize_t ahead = piece_slot(kind, data, hashed_start, ahead_len, mask);
                ring[hashed % PIECE_RING] = ahead;
                if (ahead >= 0) {
                    PREFETCH(&slots[ahead]);
                }
                hashed_start += ahead_len;
            }
            if (i + PIECE_AHEAD_OBJ < n) {
                Py_ssize_t ahead = ring[(i + PIECE_AHEAD_OBJ) % PIECE_RING];
                if (ahead >= 0) {
                    PREFETCH(slots[ahead]);
                }
            }
            slot = ring[i % PIECE_RING];
        }
        PyObject *item =
            piece(source, kind, data, start, len, ascii, cache, slot, &looked, &hits);
        if (item == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, i, item);
        start += len;
    }
    return result;
}

/* ---- batches of (str, int) pairs: the keys joined, their lengths, the values ---- */

PyDoc_STRVAR(join_pairs_doc,
"join_pairs(batch, /)\n--\n\n"
"(keys joined, lengths, values) when batch is exactly a list of exact 2-tuples of\n"
"an exact str and an exact int within 64 bits: lengths holds len(key) of every key\n"
"as a native uint32, values every value as a native int64; otherwise None.");

static PyObject *
py_join_pairs(PyObject *module, PyObject *batch)
{
    (void)module;
    if (!PyList_CheckExact(batch)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(batch);
    PyObject *result = NULL;
    PyObject *lengths = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(uint32_t));
    PyObject *values = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    PyObject *keys = PyList_New(n);
    PyObject *empty = PyUnicode_New(0, 0);
    if (lengths == NULL || values == NULL || keys == NULL || empty == NULL) {
        goto done;
    }
    /* An allocation above may have run a collection, and a finalizer may have
     * changed the list: from here on nothing allocates and no Python code runs
     * until every item is checked. */
    if (PyList_GET_SIZE(batch) != n) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    uint32_t *lens = (uint32_t *)PyBytes_AS_STRING(lengths);
    char *vals = PyBytes_AS_STRING(values);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(batch, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        if (!PyUnicode_CheckExact(key) || !PyLong_CheckExact(value)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(key);
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (len > (Py_ssize_t)UINT32_MAX || overflow) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        int64_t v64 = (int64_t)v;
        lens[i] = (uint32_t)len;
        memcpy(vals + i * (Py_ssize_t)sizeof(int64_t), &v64, sizeof(int64_t));
        PyList_SET_ITEM(keys, i, Py_NewRef(key));
    }
    PyObject *joined = PyUnicode_Join(empty, keys);
    if (joined != NULL) {
        result = PyTuple_Pack(3, joined, lengths, values);
        Py_DECREF(joined);
    }

done:
    Py_XDECREF(lengths);
    Py_XDECREF(values);
    Py_XDECREF(keys); /* items not set yet are NULL: list_dealloc skips them */
    Py_XDECREF(empty);
    return result;
}

PyDoc_STRVAR(split_pairs_doc,
"split_pairs(text, lengths, values, /)\n--\n\n"
"The pairs join_pairs took apart: (key, value) tuples, the keys cut from text by\n"
"the native uint32 lengths, the values read from the native int64 values (the\n"
"tuples untracked by the cyclic GC: they cannot be part of a cycle).\n"
"ValueError when the lengths do not add up to len(text) or the counts differ.");

static PyObject *
py_split_pairs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "split_pairs() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *text = args[0];
    PyObject *lengths = args[1];
    PyObject *values = args[2];
    if (!PyUnicode_CheckExact(text) || !PyBytes_CheckExact(lengths) ||
        !PyBytes_CheckExact(values)) {
        PyErr_SetString(PyExc_TypeError, "split_pairs() expects a str and two bytes");
        return NULL;
    }
    Py_ssize_t n;
    const uint32_t *in = lengths_of("split_pairs", PyUnicode_GET_LENGTH(text), lengths, &n);
    if (in == NULL) {
        return NULL;
    }
    if (PyBytes_GET_SIZE(values) != n * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "split_pairs() needs as many values as lengths");
        return NULL;
    }
    const char *vals = PyBytes_AS_STRING(values);
    PyObject *result = PyList_New(n);
    if (result == NULL) {
        return NULL;
    }
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t end = start + (Py_ssize_t)in[i];
        int64_t v64;
        memcpy(&v64, vals + i * (Py_ssize_t)sizeof(int64_t), sizeof(int64_t));
        PyObject *key = PyUnicode_Substring(text, start, end);
        PyObject *value = key == NULL ? NULL : PyLong_FromLongLong((long long)v64);
        PyObject *pair = value == NULL ? NULL : PyTuple_New(2);
        if (pair == NULL) {
            Py_XDECREF(key);
            Py_XDECREF(value);
            Py_DECREF(result);
            return NULL;
        }
        PyTuple_SET_ITEM(pair, 0, key);
        PyTuple_SET_ITEM(pair, 1, value);
        /* A tuple of a str and an int can never be part of a reference cycle: the
         * cyclic GC untracks such a tuple the first time it looks at it. Untracked
         * from the start, a batch of pairs adds nothing to the young generation,
         * and the pairs a receiver keeps (a reduction's result) never pile up in
         * the older ones to set off a full collection. */
        PyObject_GC_UnTrack(pair);
        PyList_SET_ITEM(result, i, pair);
        start = end;
    }
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"buckets", (PyCFunction)(void (*)(void))py_buckets, METH_FASTCALL, buckets_doc},
    {"str_crc32", (PyCFunction)py_str_crc32, METH_O, str_crc32_doc},
    {"join_sized", (PyCFunction)py_join_sized, METH_O, join_sized_doc},
    {"split_sized", (PyCFunction)(void (*)(void))py_split_sized, METH_FASTCALL,
     split_sized_doc},
    {"join_pairs", (PyCFunction)py_join_pairs, METH_O, join_pairs_doc},
    {"split_pairs", (PyCFunction)(void (*)(void))py_split_pairs, METH_FASTCALL,
     split_pairs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "flowstage._speedups",
    "Optional compiled helpers for flowstage._hash and the process executor's frames "
    "(pure-Python fallback there).",
    -1,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    crc_table_init();
    return PyModule_Create(&speedups_module);
}
