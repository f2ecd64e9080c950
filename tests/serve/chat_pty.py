"""chat_pty.py SALIGN - drive `salign chat` through a pseudo-terminal: two turns, a /mode switch,
Ctrl-C during a long answer (the answer stops, the program goes on), Ctrl-C at the prompt, Ctrl-C
right behind a pasted line, /quit. Prints what it saw as JSON; tests/run-chat.sh checks it.

A line is typed only once the line editor has the terminal in its own mode (not canonical), as a
person would: libedit prints the prompt before it leaves the cooked mode, and a line typed in
between is echoed twice, once by the terminal and once by the editor, so that the first echo of
"The sun was hot." was followed by the editor's "T", taken for the answer's first byte, and the
Ctrl-C meant for the answer reached the editor (a CI failure; see src/chat_cli.c)."""
import json, os, pty, re, select, sys, termios, time

salign = sys.argv[1]
args = [salign, "chat", "--upstream", "weights/stories260K.salm", "--aligner", "weights/demo-aligner.salm",
        "--temp", "0", "-t", "1", "-c", "4096", "--max-tokens", "3000"]
pid, fd = pty.fork()
if pid == 0:
    os.execv(salign, args)

buf = b""
def read_until(pattern, timeout=60):
    """Read until the regex matches the output since the last call; return that output."""
    global buf
    t0 = time.time()
    while time.time() - t0 < timeout:
        m = re.search(pattern, buf)
        if m:
            got, buf = buf[:m.end()], buf[m.end():]
            return got.decode("utf-8", "replace")
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                _, status = os.waitpid(pid, 0)
                raise SystemExit(f"the chat ended (exit status {os.waitstatus_to_exitcode(status)}) while "
                                 f"waiting for {pattern!r}; have {buf[-300:]!r}")
            buf += data
    try:  # where the chat waits, for the report
        where = open(f"/proc/{pid}/wchan").read()
    except OSError:
        where = "?"
    raise SystemExit(f"timed out waiting for {pattern!r} (the chat waits in {where}); have {buf[-300:]!r}")

def editor_ready(timeout=30):
    """Wait until the line editor reads the terminal: the slave's ICANON off (termios on the master
    is the slave's)."""
    t0 = time.time()
    while termios.tcgetattr(fd)[3] & termios.ICANON:
        if time.time() - t0 > timeout:
            raise SystemExit(f"timed out waiting for the line editor; have {buf[-300:]!r}")
        time.sleep(0.002)

def send(s):
    """Type at the prompt (the editor is ready)."""
    editor_ready()
    os.write(fd, s.encode())

out = {}
read_until(rb"> ")
# Ctrl-C right behind a pasted line, while the editor is still echoing it (not waiting in read()):
# the kernel drops the rest of the line; a fresh prompt each time. Before any answer, when the
# OpenBLAS thread sleeps, the chat once quit here (1 try in 5) or stayed silent (see src/chat_cli.c).
out["paste_intr"] = ""
for _ in range(5):
    send("a" * 1500 + "\x03")
    out["paste_intr"] += read_until(rb"\n> ", 30)
send("Lily had a red ball.\r")
out["turn1"] = read_until(rb"\(stream: [^)]*\)[^\n]*\n.*?> ", 60)
send("/mode none\r")
out["mode"] = read_until(rb"> ")
send("Tom saw a dog.\r")
out["turn2"] = read_until(rb"\(none: [^)]*\)[^\n]*\n.*?> ", 60)
# a long answer (thousands of tokens), interrupted as soon as it starts
send("/mode none\r")
read_until(rb"> ")
send("/reset\r")
read_until(rb"> ")
send("The sun was hot.\r")
read_until(rb"The sun was hot\.\r\n")  # the editor's echo, the only one
first = read_until(rb"\S")  # the first bytes of the answer
os.write(fd, b"\x03")  # now, while the answer is written (the terminal is cooked then)
out["cancel"] = first + read_until(rb"\[cancelled[^\n]*\n.*?> ", 30)
# Ctrl-C at the prompt: a fresh prompt, the program goes on
send("\x03")
out["prompt_intr"] = read_until(rb"> ", 30)
send("The cat ran.\r")
out["after"] = read_until(rb"\(none: [^)]*\)[^\n]*\n.*?> ", 60)
send("/quit\r")
_, status = os.waitpid(pid, 0)
out["exit"] = os.waitstatus_to_exitcode(status)
print(json.dumps(out))
