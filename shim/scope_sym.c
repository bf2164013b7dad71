/* dlsym(h, name) for the many names a backend binds, without dlsym's
 * machinery (error state, setjmp, locks: ~850 instructions a name, 90 names
 * for an OpenSSL). The same search the loader makes for a handle, read from
 * the objects' own GNU hash tables: the object itself, then its DT_NEEDED
 * libraries in order (libssl: libcrypto, libc), each found as the loader
 * finds it (the first loaded object of that soname) and checked against
 * dlsym once, at its first name. A name found there is the one dlsym finds,
 * as every deeper object comes later in its search. The needed libraries are
 * found at the first name the object itself lacks (GnuTLS's names are all its
 * own: its 9 needed libraries cost ~13,000 instructions to find). Anything
 * out of the ordinary (no GNU hash table, a needed library not found, an
 * IFUNC or a TLS symbol, a name not found) is handed to dlsym itself. */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "scope.h"

static ElfW(Addr) absolute(const struct link_map *m, ElfW(Addr) a)
{
    /* glibc relocates these entries of .dynamic in place on most machines,
     * not on those whose .dynamic is read-only. */
    return a < m->l_addr ? a + m->l_addr : a;
}

static int table_of(const struct link_map *m, struct sg_symtab *t)
{
    memset(t, 0, sizeof *t);
    t->base = m->l_addr;
    for (const ElfW(Dyn) *d = m->l_ld; d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_SYMTAB)
            t->syms = (const ElfW(Sym) *)absolute(m, d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            t->strs = (const char *)absolute(m, d->d_un.d_ptr);
        else if (d->d_tag == DT_VERSYM)
            t->versym = (const ElfW(Half) *)absolute(m, d->d_un.d_ptr);
        else if (d->d_tag == DT_GNU_HASH)
            t->gnu = (const uint32_t *)absolute(m, d->d_un.d_ptr);
        else if (d->d_tag == DT_SONAME)
            t->soname = d->d_un.d_val;
    }
    return t->syms && t->strs && t->gnu;
}

static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* 1 found (*out, possibly NULL for "hand it to dlsym"), 0 not in t. As the
 * loader's check_match for an unversioned dlsym: a defined symbol of a usual
 * type; one of no version or the base version at once, else the one
 * non-hidden version. */
static int lookup(const struct sg_symtab *t, const char *name, uint32_t h, void **out)
{
    const uint32_t nbuckets = t->gnu[0], symoffset = t->gnu[1];
    const uint32_t bloom_size = t->gnu[2], shift = t->gnu[3];
    const ElfW(Addr) *bloom = (const ElfW(Addr) *)&t->gnu[4];
    const uint32_t *buckets = (const uint32_t *)&bloom[bloom_size];
    const uint32_t *chain = &buckets[nbuckets];
    const unsigned bits = sizeof(ElfW(Addr)) * 8;
    ElfW(Addr) word = bloom[(h / bits) % bloom_size];
    if (!nbuckets || !bloom_size ||
        !((word >> (h % bits)) & (word >> ((h >> shift) % bits)) & 1))
        return 0;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return 0;
    const ElfW(Sym) *versioned = NULL;
    for (;; i++) {
        uint32_t ch = chain[i - symoffset];
        const ElfW(Sym) *s = &t->syms[i];
        if ((ch | 1) == (h | 1) && strcmp(t->strs + s->st_name, name) == 0 &&
            s->st_shndx != SHN_UNDEF && s->st_value != 0) {
            int type = ELF64_ST_TYPE(s->st_info), bind = ELF64_ST_BIND(s->st_info);
            if (type == STT_TLS || type == STT_GNU_IFUNC || bind == STB_GNU_UNIQUE) {
                *out = NULL; /* dlsym knows what to do */
                return 1;
            }
            int usual = type == STT_FUNC || type == STT_OBJECT || type == STT_NOTYPE ||
                        type == STT_COMMON;
            if (usual && (bind == STB_GLOBAL || bind == STB_WEAK)) {
                ElfW(Half) v = t->versym ? t->versym[i] : 0;
                if ((v & 0x7fff) < 2) {
                    *out = (void *)(t->base + s->st_value);
                    return 1;
                }
                if (!(v & 0x8000) && !versioned)
                    versioned = s;
            }
        }
        if (ch & 1)
            break;
    }
    if (!versioned)
        return 0;
    *out = (void *)(t->base + versioned->st_value);
    return 1;
}

static int has_soname(const struct link_map *m, const char *soname)
{
    struct sg_symtab t;
    return m->l_name[0] && table_of(m, &t) && t.soname && strcmp(t.strs + t.soname, soname) == 0;
}

static int file_named(const struct link_map *m, const char *soname)
{
    const char *base = strrchr(m->l_name, '/');
    return strcmp(base ? base + 1 : m->l_name, soname) == 0;
}

/* The object loaded under that soname. First the one whose file has that
 * name (the usual case: no other object's dynamic section is read), else
 * the first of that soname, as the loader matches a needed name. Were an
 * earlier object to carry the soname under another file name, the first
 * name found in the one chosen differs from dlsym's and sg_scope_sym hands
 * every name to dlsym from then on. */
static const struct link_map *loaded_as(const struct link_map *from, const char *soname)
{
    const struct link_map *first = from;
    while (first->l_prev)
        first = first->l_prev;
    for (const struct link_map *m = first; m; m = m->l_next)
        if (file_named(m, soname) && has_soname(m, soname))
            return m;
    for (const struct link_map *m = first; m; m = m->l_next)
        if (has_soname(m, soname))
            return m;
    return NULL;
}

/* dlinfo by name at its first use: linked, it alone would make every process
 * check one more glibc version at exec (its only one, GLIBC_2.3.3; see
 * libc_compat.h). */
static int link_map_of(void *h, struct link_map **m)
{
    typedef int (*dlinfo_fn)(void *, int, void *);
    static dlinfo_fn info;
    dlinfo_fn f = __atomic_load_n(&info, __ATOMIC_ACQUIRE);
    if (!f) {
        f = (dlinfo_fn)dlsym(RTLD_DEFAULT, "dlinfo");
        __atomic_store_n(&info, f, __ATOMIC_RELEASE);
    }
    return f && f(h, RTLD_DI_LINKMAP, m) == 0 && *m;
}

void sg_scope_search_init(struct sg_search *s, void *h)
{
    struct link_map *m = NULL;
    s->h = h;
    s->n = 0;
    s->pending = NULL;
    if (!h || !link_map_of(h, &m) || !table_of(m, &s->t[0]))
        return;
    s->t[0].checked = 1; /* the handle's own object: first in its search */
    s->n = 1;
    s->pending = m; /* its needed libraries: at the first name not found in it */
}

/* The needed libraries, next in the handle's search, in order: as many as
 * are found and fit (libgnutls has 9). A name in none of them goes to dlsym,
 * which searches the rest as the loader would. */
static void add_needed(struct sg_search *s)
{
    const struct link_map *m = s->pending;
    s->pending = NULL;
    for (const ElfW(Dyn) *d = m->l_ld; d->d_tag != DT_NULL; d++) {
        if (d->d_tag != DT_NEEDED)
            continue;
        const struct link_map *dep = loaded_as(m, s->t[0].strs + d->d_un.d_val);
        if (!dep || s->n == SG_SEARCH_MAX || !table_of(dep, &s->t[s->n]))
            return;
        s->t[s->n++].checked = 0;
    }
}

void *sg_scope_sym(struct sg_search *s, const char *name)
{
    return sg_scope_sym_h(s, name, gnu_hash(name));
}

void *sg_scope_sym_h(struct sg_search *s, const char *name, uint32_t h)
{
    for (int i = 0;; i++) {
        if (i == s->n && s->pending)
            add_needed(s);
        if (i >= s->n)
            break;
        void *fn;
        if (!lookup(&s->t[i], name, h, &fn))
            continue;
        if (fn && s->t[i].checked)
            return fn;
        void *real = dlsym(s->h, name);
        if (fn && fn == real)
            s->t[i].checked = 1;
        else if (fn)
            s->n = 0, s->pending = NULL; /* that was not the object the loader uses */
        return real;
    }
    return dlsym(s->h, name);
}
