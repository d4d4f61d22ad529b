# shellcheck shell=bash
# cli_doc_commands.sh - every pgbank command line the documentation shows is
# one the CLI accepts: README.md, docs/*.md, man/pgbank.1 and the --help
# texts (`pgbank --help`, `pgbank COMMAND --help`).  Each line runs under
# PGBANK_PARSE_ONLY=1: parsed and validated, nothing sent, no server
# started, no file written.  Needs no database.
#
# What is checked, by kind:
#   line      a command line of a code block, a man page .nf block or a
#             help text's Examples: it must be accepted as it is, its
#             placeholders (ACCOUNT, AMOUNT, URL, "$id", "$(...)", ...)
#             replaced by plausible values.
#   mention   `pgbank ...` in prose (markdown code spans, man page bold
#             text, quoted in a help text): the same, except that missing
#             positional arguments (`pgbank history`) are filled in.
#   synopsis  a usage line (`Usage: pgbank race [--runs R] ...`, a man page
#             .SS heading): its required part must be accepted, and so must
#             each [--option VALUE] with it, one at a time; a|b|c tries each.
#   option    an entry of a help text's Options list or of a man page
#             section's .TP list: the command accepts that option as shown
#             (a flag, or with a value).
# And the other way round: every option a command's --help lists is in the
# man page, in that command's section (global ones in GLOBAL OPTIONS).
# Each source's count is printed; a failure names the source and its line.
#
# Usage: [VERBOSE=1] cli_doc_commands.sh PATH_TO_PGBANK  (VERBOSE: list every check)
set -u
PGBANK=${1:?usage: $0 PATH_TO_PGBANK}
SRC=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v python3 >/dev/null 2>&1; then
    echo "cli_doc_commands.sh: python3 is required (scripts/deps.sh test installs it)" >&2
    exit 1
fi

exec python3 - "$PGBANK" "$SRC" <<'PYTHON'
import atexit, glob, os, re, shlex, shutil, subprocess, sys, tempfile

PGBANK, SRC = os.path.abspath(sys.argv[1]), sys.argv[2]

# Lines the documentation shows on purpose although pgbank refuses them,
# as (source, text the line contains, why).  Keep it tiny.
ALLOWED = [
]

# How a documented command line starts.
PREFIX = re.compile(r'^(?:\./)?(?:build/pgbank|pgbank|\$PGBANK|\$\{PGBANK\})(?=\s|$)')
GLOBAL_VALUE = {'--db', '--data-dir'}
GLOBAL_FLAG = {'--echo', '--json', '--unnamed-statements'}

# Plausible values of options shown with a placeholder (--limit N).
OPTION_VALUE = {
    '--db': 'postgresql://alice@db.example.com/bank', '--data-dir': '/nonexistent/pgbank',
    '--strategy': 'for-update', '--strategies': 'explicit,atomic', '--key': 'order-1234',
    '--balance': '100', '--limit': '5', '--runs': '3', '--mode': 'natural',
    '--clients': '4', '--hot-clients': '4', '--duration': '0.5', '--plot': 'plot.png',
    '--accounts': '10', '--distribution': 'zipf', '--depth': '4', '--connections': '4',
    '--lanes': '2', '--batch-max': '100', '--batch-inflight': '2', '--seed': '42',
    '--faults': 'terminate', '--drain-timeout': '5', '--app-role': 'bank_app',
}
# ... and of positional placeholders.
POSITIONAL_VALUE = {'ACCOUNT': '1', 'ID': '1', 'FROM': '1', 'TO': '2', 'AMOUNT': '5',
                    'N': '10', 'COMMAND': 'audit', 'command': 'audit'}
# What a command needs besides options, for mentions and option checks.
BASE_ARGS = {'server': ['status'], 'account': ['open'], 'balance': ['1'], 'history': ['1'],
             'withdraw': ['1', '5'], 'deposit': ['1', '5'], 'transfer': ['1', '2', '5']}


def is_placeholder(t):
    return (t == '...' or re.fullmatch(r'[A-Z][A-Z0-9_]*(\.[a-z]+)?', t) is not None
            or t in ('command',))


def substitute(tokens):
    """Placeholders and shell variables replaced by plausible values."""
    out, accounts = [], {}
    for t in tokens:
        prev = out[-1] if out else ''
        if prev.startswith('--') and (is_placeholder(t) or t.startswith('$')) and prev in OPTION_VALUE:
            out.append(OPTION_VALUE[prev])
        elif t.startswith('$'):
            # "$id", "$to", "$(...)": account ids, distinct per variable.
            out.append(accounts.setdefault(t, str(len(accounts) + 1)))
        elif is_placeholder(t):
            out.append(POSITIONAL_VALUE.get(t, '1'))
        elif '=' in t and t.startswith('--'):
            name, value = t.split('=', 1)
            out.append(name + '=' + (OPTION_VALUE.get(name, value) if is_placeholder(value) else value))
        else:
            out.append(t)
    return out


def command_of(args):
    """The command word of pgbank's arguments (global options skipped)."""
    i = 0
    while i < len(args) and args[i].startswith('-'):
        i += 2 if args[i] in GLOBAL_VALUE else 1
    return args[i] if i < len(args) else None


ENV = {k: v for k, v in os.environ.items()
       if k != 'DATABASE_URL' and not k.startswith('PG')}
ENV['PGBANK_PARSE_ONLY'] = '1'
WORK = tempfile.mkdtemp(prefix='pgbank-doc-')
atexit.register(shutil.rmtree, WORK, True)
ENV['PGBANK_DATA_DIR'] = os.path.join(WORK, 'never-created')


RESULTS = {}  # the same command line is shown many times


def run(args):
    key = tuple(args)
    if key not in RESULTS:
        RESULTS[key] = run_pgbank(args)
    return RESULTS[key]


def run_pgbank(args):
    p = subprocess.run([PGBANK] + args, env=ENV, cwd=WORK, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode(errors='replace').strip().splitlines()
    return p.returncode, ' | '.join(err[:2])


class Check:
    def __init__(self, source, line, kind, text, args):
        self.source, self.line, self.kind, self.text, self.args = source, line, kind, text, args


CHECKS = []


def add(source, line, kind, text, args):
    CHECKS.append(Check(source, line, kind, text, args))


def split_shell(text):
    """shlex tokens, a trailing comment dropped; None when it does not split."""
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return None


def command_segments(line):
    """The pgbank invocations in a shell line: segments split at ;, &&,
    ||, |, and $( ... ), each starting with pgbank after an optional prompt
    or assignment."""
    found = []
    # Separate $( ... ) bodies: their contents are segments of their own.
    for body in re.findall(r'\$\(([^()]*)\)', line):
        found += command_segments(body)
    line = re.sub(r'\$\(([^()]*)\)', '"$(...)"', line)
    for seg in re.split(r'&&|\|\||;|(?<![\\])\|', line):
        seg = seg.strip()
        seg = re.sub(r'^\$\s+', '', seg)                 # prompt
        seg = re.sub(r'^(export\s+)?\w+=\S*\s+', '', seg)  # VAR=value before
        if PREFIX.match(seg):
            found.append(seg)
    return found


def add_line(source, lineno, kind, text):
    """A shell line of the documentation: each pgbank invocation in it."""
    for seg in command_segments(text):
        tokens = split_shell(seg)
        if not tokens or len(tokens) < 2:
            continue
        args = tokens[1:]
        # Output, not a command: "pgbank race: 20 runs ...".
        if args[0].endswith(':'):
            continue
        add(source, lineno, kind, re.sub(r'\s+#.*$', '', seg), args)


def expand_alternatives(tokens):
    """[['a', 'b|c']] -> every combination of the | alternatives."""
    combos = [[]]
    for t in tokens:
        alts = t.split('|') if '|' in t and not t.startswith('|') else [t]
        combos = [c + [a] for c in combos for a in alts]
    return combos


def add_synopsis(source, lineno, text):
    """`pgbank CMD REQUIRED [--opt V] [--flag]`: the required part alone, then
    with each optional group holding an option."""
    body = PREFIX.sub('', text.strip()).strip()
    groups = re.findall(r'\[([^\[\]]*)\]', body)
    required = re.sub(r'\[[^\[\]]*\]', ' ', body).split()
    for req in expand_alternatives(required):
        add(source, lineno, 'synopsis', 'pgbank ' + ' '.join(req), req)
        for g in groups:
            words = g.split()
            if not words or not words[0].startswith('-'):
                continue
            for alt in expand_alternatives(words):
                args = req + alt
                add(source, lineno, 'synopsis', 'pgbank ' + ' '.join(args), args)


def add_option(source, lineno, command, option, value):
    """An option a command's documentation lists."""
    if command is None:  # a global option: with a command that needs nothing
        base = ['audit']
    else:
        base = [command] + BASE_ARGS.get(command, [])
    opt = [option] + ([value] if value else [])
    text = '%s %s' % (command or '(global)', ' '.join(opt))
    add(source, lineno, 'option', text, base + opt)


# --- Markdown ----------------------------------------------------------------

def add_spans(source, lines):
    """`pgbank ...` code spans in prose; lines is [(lineno, text)], a
    paragraph (a span may go on over a line break)."""
    text, starts = '', []
    for n, line in lines:
        starts.append((len(text), n))
        text += line + ' '
    for m in re.finditer(r'`([^`]+)`', text):
        n = [ln for off, ln in starts if off <= m.start()][-1]
        span = ' '.join(m.group(1).replace('\\|', '|').split())
        if not PREFIX.match(span):
            continue
        if '|' in span:  # `pgbank server start|stop|status|url`
            add_synopsis(source, n, span)
        else:
            tokens = split_shell(span)
            if tokens and len(tokens) > 1:
                add(source, n, 'mention', span, tokens[1:])


def scan_markdown(path):
    source = os.path.relpath(path, SRC)
    fenced, pending, start, paragraph = False, '', 0, []
    for n, raw in enumerate(open(path, encoding='utf-8'), 1):
        line = raw.rstrip('\n')
        if line.lstrip().startswith('```') or not line.strip():
            add_spans(source, paragraph)
            paragraph = []
            if line.strip():
                fenced = not fenced
            continue
        if not fenced:
            paragraph.append((n, line))
            continue
        # A code block: shell lines (a backslash continues one), and code
        # spans in comments ("-- after `pgbank --db ... init`").
        add_spans(source, [(n, line)])
        if not pending:
            start = n
        if line.endswith('\\'):
            pending += line[:-1] + ' '
            continue
        add_line(source, start, 'line', pending + line)
        pending = ''
    add_spans(source, paragraph)


# --- The man page --------------------------------------------------------------

def troff_text(s):
    s = re.sub(r'\\f[BIRP]', '', s)
    s = s.replace('\\-', '-').replace('\\&', '').replace('\\(lq', '"').replace('\\(rq', '"')
    return s


def macro_args(s):
    try:
        return shlex.split(s, posix=True)
    except ValueError:
        return s.split()


MAN_TEXT = {}      # command (None: GLOBAL OPTIONS) -> its man page section's text
HELP_OPTIONS = {}  # command (None: pgbank --help) -> {option: line of its --help}


def scan_man(path):
    source = os.path.relpath(path, SRC)
    section, command, nofill, after_tp = '', None, False, False
    for n, raw in enumerate(open(path, encoding='utf-8'), 1):
        line = raw.rstrip('\n')
        if line.startswith('.\\"'):
            continue
        if not line.startswith(('.SH', '.SS')) and (
                section == 'GLOBAL OPTIONS' or (section == 'COMMANDS' and command)):
            key = None if section == 'GLOBAL OPTIONS' else command
            MAN_TEXT[key] = MAN_TEXT.get(key, '') + troff_text(line) + '\n'
        if line.startswith('.nf'):
            nofill = True
            continue
        if line.startswith('.fi'):
            nofill = False
            continue
        if nofill:
            add_line(source, n, 'line', troff_text(line))
            continue
        m = re.match(r'\.(S[HS])\s+(.*)', line)
        if m:
            title = troff_text(m.group(2)).strip('"')
            if m.group(1) == 'SH':
                section, command = title, None
            elif PREFIX.match(title):
                add_synopsis(source, n, title)
                command = PREFIX.sub('', title).split()[0]
                MAN_TEXT[command] = MAN_TEXT.get(command, '') + title + '\n'
            continue
        if line.startswith('.TP'):
            after_tp = True
            continue
        m = re.match(r'\.(B|I|BR|RB|BI|IB|IR|RI)\s+(.*)', line)
        if not m:
            after_tp = False
            continue
        args = macro_args(troff_text(m.group(2)))
        if after_tp and args and args[0].startswith('-') and (
                section == 'GLOBAL OPTIONS' or (section == 'COMMANDS' and command)):
            # .BI \-\-limit " N"  /  .B \-\-json  /  .BR \-h ", " \-\-help
            # /  .BI \-\-batch\-max " M\fR, " \-\-batch\-inflight " B"
            words = ' '.join(args).replace(',', ' ').split()
            i = 0
            while i < len(words):
                w = words[i]
                if w.startswith('--'):
                    value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith('-') else None
                    add_option(source, n, None if section == 'GLOBAL OPTIONS' else command, w,
                               OPTION_VALUE.get(w, '1') if value else None)
                i += 1
        after_tp = False
        # Bold or italic text naming a command: .RB ( "pgbank race" ),
        alternating = len(m.group(1)) == 2
        text = ('' if alternating else ' ').join(args)
        for mention in re.findall(r'(?:^|[\s(])(pgbank(?: [A-Za-z-][^\s),]*)+)', text):
            mention = mention.rstrip('.')
            tokens = mention.split()
            if len(tokens) > 1:
                if '|' in mention:
                    add_synopsis(source, n, mention)
                else:
                    add(source, n, 'mention', mention, tokens[1:])


# --- The help texts ------------------------------------------------------------

def scan_help(source, text, command):
    """The text of `pgbank --help` (command None) or `pgbank CMD --help`."""
    lines = text.splitlines()
    block = ''
    usage, usage_line = None, 0
    for n, line in enumerate(lines, 1):
        if line.startswith('Usage: '):
            usage, usage_line = line[len('Usage: '):], n
            continue
        if usage is not None:
            if line.startswith(' ') and line.strip():
                usage += ' ' + line.strip()
                continue
            add_synopsis(source, usage_line, usage)
            usage = None
        if not line.strip():
            block = ''
            continue
        if not line.startswith(' '):
            block = line.rstrip(':').split(' (')[0]
            continue
        if block in ('Example', 'Examples'):
            add_line(source, n, 'line', line.strip())
        elif block in ('Options', 'Global options') and re.match(r'  -', line):
            # "  --limit N   ...", "  -h, --help  ...", "  --batch-max M, --batch-inflight B"
            head = re.match(r'\s+(\S.*?)(?:\s{2,}|$)', line).group(1)
            for item in head.split(', '):
                words = item.split()
                if words and words[0].startswith('--'):
                    HELP_OPTIONS.setdefault(command, {}).setdefault(words[0], n)
                    add_option(source, n, command, words[0],
                               OPTION_VALUE.get(words[0], '1') if len(words) > 1 else None)
        for quoted in re.findall(r"'((?:build/)?pgbank [^']*)'", line):
            tokens = split_shell(quoted)
            if tokens and len(tokens) > 1 and '%' not in quoted:
                add(source, n, 'mention', quoted, tokens[1:])


def help_of(args):
    p = subprocess.run([PGBANK] + args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit('pgbank %s exited %d' % (' '.join(args), p.returncode))
    return p.stdout.decode()


general = help_of(['--help'])
scan_help('pgbank --help', general, None)
commands = re.findall(r'^  ([a-z]+) ', general.split('Commands:')[1].split('\n\n')[0], re.M)
for cmd in commands:
    scan_help('pgbank %s --help' % cmd, help_of([cmd, '--help']), cmd)
for path in [os.path.join(SRC, 'README.md')] + sorted(glob.glob(os.path.join(SRC, 'docs', '*.md'))):
    scan_markdown(path)
scan_man(os.path.join(SRC, 'man', 'pgbank.1'))

# --- Running them --------------------------------------------------------------

failures, counts, allowed_used = [], {}, set()
VERBOSE = os.environ.get('VERBOSE') == '1'  # every check and what it ran
for c in CHECKS:
    args = substitute(c.args)
    rc, err = run(args)
    cmd = command_of(args)
    if rc != 0 and c.kind == 'mention' and (cmd is None or 'missing' in err):
        # A command (or a global option) named in prose, without the rest of
        # its command line: fill it in.
        args = args + (BASE_ARGS.get(cmd, []) if cmd else ['audit'])
        rc, err = run(args)
    counts[c.source] = counts.get(c.source, 0) + 1
    if VERBOSE:
        print('%s:%d: [%s] exit %d: pgbank %s' % (c.source, c.line, c.kind, rc, ' '.join(args)))
    if rc == 0:
        continue
    allowed = [a for a in ALLOWED if a[0] == c.source and a[1] in c.text]
    if allowed:
        allowed_used.add(ALLOWED.index(allowed[0]))
        continue
    failures.append('%s:%d: [%s] %s\n    ran: pgbank %s\n    exit %d: %s'
                    % (c.source, c.line, c.kind, c.text, ' '.join(shlex.quote(a) for a in args), rc, err))

# The other way round: every option a --help text lists is in the man page,
# in that command's section (global options in GLOBAL OPTIONS).
looked_up = 0
for cmd, options in sorted(HELP_OPTIONS.items(), key=lambda kv: kv[0] or ''):
    for opt, n in options.items():
        if cmd is not None and opt in GLOBAL_VALUE | GLOBAL_FLAG | {'--help', '--version'}:
            continue
        looked_up += 1
        if not re.search(re.escape(opt) + r'(?![\w-])', MAN_TEXT.get(cmd, '')):
            failures.append('man/pgbank.1: %s does not document %s, which pgbank %s--help:%d does'
                            % ('GLOBAL OPTIONS' if cmd is None else 'pgbank ' + cmd,
                               opt, cmd + ' ' if cmd else '', n))

order = sorted(counts, key=lambda s: (not s.startswith('pgbank'), s))
for s in order:
    print('%-28s %4d command lines checked' % (s, counts[s]))
print('%-28s %4d command lines checked' % ('total', len(CHECKS)))
print('%-28s %4d options of the --help texts looked up in the man page' % ('man/pgbank.1', looked_up))
for i, a in enumerate(ALLOWED):
    if i not in allowed_used:
        failures.append('allow-list entry no longer needed: %s: %s' % (a[0], a[1]))
if failures:
    print('\nThe documentation and pgbank disagree (%d):\n' % len(failures), file=sys.stderr)
    print('\n'.join(failures), file=sys.stderr)
    sys.exit(1)
print('every documented command line is accepted')
PYTHON
