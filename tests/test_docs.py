"""The README and docs/: every relative link resolves, the README opens with the two
commands, lists every page, and names only tests that exist."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / 'tests'

FENCE = re.compile(r'^\s*(```|~~~)')
ATX_HEADING = re.compile(r'^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$')
CODE_SPAN = re.compile(r'(`+)(?:(?!\1).)+?\1')
LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
SCHEME = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*:')
# Tests the docs name from Cloud Custodian's own repository, not this one.
CLOUD_CUSTODIAN_TESTS = {'test_policy.py', 'test_iamgen.py'}


def doc_files():
    return [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]


def prose_lines(text):
    """The lines outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def slug(heading):
    """GitHub's anchor for a heading: the rendered text, lower-cased, without
    punctuation other than '-' and '_', each space a '-'."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    text = text.replace('`', '').strip().lower()
    text = ''.join(ch for ch in text if ch.isalnum() or ch in ' -_')
    return text.replace(' ', '-')


def anchors(path):
    """Every heading's anchor; a repeated one gets -1, -2 … as on GitHub."""
    seen, found = {}, set()
    for line in prose_lines(path.read_text(encoding='utf-8')):
        m = ATX_HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f'{base}-{n}')
    return found


def links(path):
    for line in prose_lines(path.read_text(encoding='utf-8')):
        for m in LINK.finditer(CODE_SPAN.sub('', line)):
            yield m.group(1)


def broken_links(paths):
    """(file, target, why) for each relative link whose file or heading is missing."""
    broken = []
    for path in paths:
        for target in links(path):
            if SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition('#')
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                broken.append((path.name, target, 'no such file'))
            elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
                broken.append((path.name, target, 'no such heading'))
    return broken


def test_every_relative_link_resolves():
    assert broken_links(doc_files()) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / 'other.md').write_text('# The report: `c7n-unused-keys report OUT`\n'
                                       '## Who decides: the tags\n## Rollout\n## Rollout\n')
    (tmp_path / 'page.md').write_text(
        '# Page\n\n'
        '[ok](other.md#the-report-c7n-unused-keys-report-out) '
        '[ok](other.md#who-decides-the-tags) [ok](other.md#rollout-1) [ok](#page)\n'
        '[gone](missing.md) [bad anchor](other.md#rollout-2) [bad here](#nowhere)\n'
        '[web](https://example.com/x.md) `[in code](missing-too.md)`\n'
        '```\n[in a block](missing-three.md)\n```\n')
    assert broken_links([tmp_path / 'page.md']) == [
        ('page.md', 'missing.md', 'no such file'),
        ('page.md', 'other.md#rollout-2', 'no such heading'),
        ('page.md', '#nowhere', 'no such heading'),
    ]


def test_the_readme_opens_with_make_demo_then_make_test():
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    block = re.search(r'^```\w*\n(.*?)^```', text, re.M | re.S).group(1)
    commands = [line.split('#')[0].strip() for line in block.splitlines() if line.strip()]
    assert commands[:2] == ['make demo', 'make test']
    makefile = (ROOT / 'Makefile').read_text()
    assert re.search(r'^demo:', makefile, re.M) and re.search(r'^test:', makefile, re.M)


def test_the_readme_reference_links_every_docs_page():
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    reference = text.split('\n## Reference\n', 1)[1].split('\n## ', 1)[0]
    linked = {t.partition('#')[0] for t in LINK.findall(reference)}
    pages = {f'docs/{p.name}' for p in (ROOT / 'docs').glob('*.md')}
    assert pages and linked == pages


def defined_tests(module):
    """'name' for each function and class, 'Class::method' for each method."""
    names = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {f'{node.name}::{n.name}' for n in node.body
                      if isinstance(n, ast.FunctionDef)}
    return names


def named_tests(text):
    """(file, test) for each `test_x.py::name` and each `::name` that follows one; a
    file named alone gives (file, None)."""
    current = None
    spans = (s.group(0).strip('`') for line in prose_lines(text)
             for s in CODE_SPAN.finditer(line))
    for span in spans:
        m = re.fullmatch(r'(?:tests/)?(test_\w+\.py)?((?:::\w+)*)', span)
        if not m:
            continue
        file, test = m.group(1), m.group(2).lstrip(':')
        if file:
            current = file
        elif not test or current is None:
            continue
        if (file or current) in CLOUD_CUSTODIAN_TESTS:
            continue
        yield (file or current), (test or None)


def test_every_test_the_docs_name_exists():
    missing, named = [], 0
    for path in doc_files():
        for file, test in named_tests(path.read_text(encoding='utf-8')):
            named += 1
            module = TESTS / file
            if not module.exists() or (test and test not in defined_tests(module)):
                missing.append((path.name, file, test))
    assert named > 0 and missing == []


def test_the_layout_names_every_module_of_both_packages():
    text = (ROOT / 'docs' / 'development.md').read_text()
    layout = text.split('## Layout\n', 1)[1].split('\n## ', 1)[0]
    named = set(re.findall(r'`([a-z0-9_]+)`', layout))
    for package in ('c7n_unused_keys', 'c7n_unused_keys_sandbox'):
        base = ROOT / 'plugin' / package
        modules = {p.stem for p in base.rglob('*.py')} - {'__init__'}
        modules |= {p.parent.name for p in base.rglob('*/__init__.py')}
        assert modules <= named, (package, sorted(modules - named))
