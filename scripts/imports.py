#!/usr/bin/env python3
"""imports.py: finds import cycles between the files of a Rust crate.

usage: imports.py [--exclude=NAME ...] [--uses-only] [--top | --levels] CRATE_ROOT.rs ...

A file imports another when it names an item defined there, through a `use`
or an inline `crate::`/`super::`/`self::` path (re-exports are followed to
the defining file; `#[cfg(test)]` modules and comments are ignored).
--levels (what scripts/structure.sh checks): within each folder, its files
(a subfolder counting as one) must not import each other in a circle; the
folder's own mod.rs is left out, as are the --exclude'd names.
--top: the same, for the crate's top folder only. Exits 1 on a cycle.
Written for this workspace's code, not a Rust parser: macros and
`#[path]` tricks beyond what is used here are not understood."""
import os, re, sys
from collections import defaultdict

def strip(src):
    src = re.sub(r'//[^\n]*', '', src)
    src = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
    src = re.sub(r'"(\\.|[^"\\])*"', '""', src)
    # drop #[cfg(test)] mod x { ... } blocks and #[cfg(test)] mod x; lines
    out = []; i = 0
    for m in re.finditer(r'#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{', src):
        pass
    while True:
        m = re.search(r'#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{', src[i:])
        if not m: out.append(src[i:]); break
        s = i + m.start(); out.append(src[i:s]); j = i + m.end(); depth = 1
        while depth and j < len(src):
            if src[j] == '{': depth += 1
            elif src[j] == '}': depth -= 1
            j += 1
        i = j
    return ''.join(out)

class Mod:
    def __init__(s, path, file): s.path, s.file, s.children, s.items, s.reexp = path, file, {}, set(), {}

def load(root):
    mods = {}
    def walk(path, file, is_dir_owner):
        m = Mod(path, file); mods[tuple(path)] = m
        src = strip(open(file).read()); m.src = src
        base = os.path.dirname(file) if is_dir_owner else os.path.join(os.path.dirname(file), os.path.basename(file)[:-3])
        for dm in re.finditer(r'(?m)^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', src):
            name = dm.group(1)
            a = os.path.join(base, name + '.rs'); b = os.path.join(base, name, 'mod.rs')
            pm = re.search(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+' + name + r'\b', open(file).read())
            if pm: a = os.path.join(base if not is_dir_owner else os.path.dirname(file), pm.group(1))
            if os.path.exists(a): m.children[name] = walk(path + [name], a, False)
            elif os.path.exists(b): m.children[name] = walk(path + [name], b, True)
        # inline mods: treat as same file (children pointing to same file)
        for im in re.finditer(r'(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{', src):
            c = Mod(path + [im.group(1)], file); c.src = ''; m.children[im.group(1)] = c; mods[tuple(c.path)] = c
        for it in re.finditer(r'(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+|async\s+|unsafe\s+)*(?:fn|struct|enum|trait|type|const|static|union|macro_rules!)\s+(\w+)', src):
            m.items.add(it.group(1))
        for u in uses(src):
            full, alias = u
            m.reexp.setdefault(alias, full)
        return m
    rootm = walk([], root, True)
    return rootm, mods

def expand(prefix, body):
    body = body.strip()
    res = []
    if body.startswith('{'):
        inner = body[1:-1]; depth = 0; cur = ''; parts = []
        for ch in inner:
            if ch == ',' and depth == 0: parts.append(cur); cur = ''; continue
            if ch == '{': depth += 1
            if ch == '}': depth -= 1
            cur += ch
        parts.append(cur)
        for p in parts:
            if p.strip(): res += expand(prefix, p)
        return res
    m = re.match(r'([\w:]*?)(::)?(\{.*\})$', body, re.S)
    if m and m.group(3):
        pre = [x for x in m.group(1).split('::') if x]
        return expand(prefix + pre, m.group(3))
    m = re.match(r'([\w:*]+)(\s+as\s+(\w+))?$', body, re.S)
    if not m: return []
    segs = [x for x in m.group(1).split('::') if x]
    if segs and segs[-1] == 'self': segs = segs[:-1]
    full = prefix + segs
    alias = m.group(3) or (full[-1] if full else '')
    return [(full, alias)]

def uses(src):
    out = []
    for u in re.finditer(r'(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);', src):
        out += expand([], re.sub(r'\s+', ' ', u.group(1)))
    return out

def resolve(mods, cur, segs, depth=0):
    """Return the file defining the item at segs, seen from module path cur."""
    if depth > 20 or not segs: return None
    if segs[0] == 'crate': base = []; segs = segs[1:]
    elif segs[0] == 'self': base = list(cur); segs = segs[1:]
    elif segs[0] == 'super':
        base = list(cur)
        while segs and segs[0] == 'super': base = base[:-1]; segs = segs[1:]
    else:
        m = mods.get(tuple(cur))
        if m and segs[0] in m.children: base = list(cur)
        elif m and segs[0] in m.reexp and m.reexp[segs[0]][:1] != [segs[0]]:
            return resolve(mods, cur, m.reexp[segs[0]] + segs[1:], depth + 1)
        else: return None  # external crate
    m = mods.get(tuple(base))
    while segs:
        s = segs[0]
        if s == '*': return m.file
        if s in m.children:
            m = m.children[s]; segs = segs[1:]; continue
        if s in m.items: return m.file
        if s in m.reexp:
            return resolve(mods, m.path, m.reexp[s] + segs[1:], depth + 1)
        return m.file
    return m.file

def graph(root):
    rootm, mods = load(root)
    edges = defaultdict(set)
    for path, m in mods.items():
        if not m.src: continue
        refs = [f for f, _ in uses(m.src)]
        if not USES_ONLY:
            for r in re.finditer(r'(?<![\w:])((?:crate|super|self)(?:::\w+)+)', m.src):
                refs.append(r.group(1).split('::'))
        for segs in refs:
            f = resolve(mods, list(path), segs)
            if f and f != m.file: edges[m.file].add(f)
    return edges

def sccs(edges):
    idx = {}; low = {}; st = []; on = set(); out = []; c = [0]
    nodes = set(edges) | {x for v in edges.values() for x in v}
    sys.setrecursionlimit(10000)
    def sc(v):
        idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in idx: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(comp)
    for v in sorted(nodes):
        if v not in idx: sc(v)
    return out

USES_ONLY = '--uses-only' in sys.argv
TOP = '--top' in sys.argv
LEVELS = '--levels' in sys.argv
EXCL = [a.split('=')[1] for a in sys.argv if a.startswith('--exclude=')]
bad = 0
for root in [a for a in sys.argv[1:] if not a.startswith('--')]:
    e = graph(root)
    if LEVELS:
        d0 = os.path.dirname(root)
        dirs = sorted({os.path.dirname(f) for f in set(e) | {x for v in e.values() for x in v}})
        for d in dirs:
            def top(f):
                r = os.path.relpath(f, d)
                if r.startswith('..'): return None
                r = r.split('/')[0]
                return r[:-3] if r.endswith('.rs') else r
            g = defaultdict(set)
            for a, bs in e.items():
                for b in bs:
                    ta, tb = top(a), top(b)
                    if ta and tb and ta != tb and not any(x in EXCL for x in (ta, tb)) and ta != 'mod' and tb != 'mod': g[ta].add(tb)
            for comp in sccs(g):
                bad += 1
                print(f"cycle among the files of {d}/:")
                for a in sorted(comp):
                    print("  ", a, "->", ", ".join(sorted(b for b in g[a] if b in comp)))
        continue
    if TOP:
        d = os.path.dirname(root)
        def top(f):
            r = os.path.relpath(f, d).split('/')[0]
            return r[:-3] if r.endswith('.rs') else r
        g = defaultdict(set)
        for a, bs in e.items():
            for b in bs:
                if top(a) != top(b) and not (EXCL and (top(a) in EXCL or top(b) in EXCL)): g[top(a)].add(top(b))
        e = g
    for comp in sccs(e):
        bad += 1
        print(f"cycle in {root}:")
        for a in sorted(comp):
            print("  ", a, "->", ", ".join(sorted(b for b in e[a] if b in comp)))
print(f"{bad} cycle(s)")
sys.exit(1 if bad else 0)
