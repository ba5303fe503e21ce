/*
 * fleetbox-exec: serves one exec port of a guest. The holder's end is
 * src/backend/qemu/exec-port.ts; image/exec-server.ts builds this file (static, for the guest
 * image) and image/guest-init.ts starts one per port.
 *
 *   fleetbox-exec <port> <dir> <shell> <request script>
 *
 * <port> is the port's device, or '-' when fd 3 is open on it already (the host tests run it
 * on one end of a socket pair that way); <dir>.id beside <dir> says which request runs. The
 * protocol, one request at a time:
 *   H <nonce>                  -> FLEETBOX_EXEC 1 <nonce> <pid of this server> <dir>
 *   E <id> <input bytes>\n<command>\0<input>
 *                              -> X <id> <exit code> <stdout size> <stderr size>\n
 *                                 <stdout, at most the cap><stderr, at most the cap>Z <id>\n
 *   anything else              -> ? <id>
 *
 * Why a program and not a shell loop: under emulation a fork costs the guest 1.5-3 ms and a
 * process exit ~0.5 ms. A loop of busybox's needed a reader process per output stream and
 * waited for three exits after every command; this program reads both streams itself (poll)
 * and answers as soon as the command's shell has exited and its output is closed.
 *
 * Every process a command needs is started before its request comes: a child, forked ahead,
 * that becomes the command's shell. With <shell> set (the guest's /bin/sh is busybox), the
 * child execs it at once, with the request script: it reads the command from fd 3 and runs it
 * with eval (image/guest-init.ts EXEC_REQUEST says how that differs from sh -c). With <shell>
 * empty (a root whose /bin/sh is another shell), the child waits for the command and then execs
 * '/bin/sh -c <command>', as SSH and the agent run a command.
 *
 * What the child is handed on its fd 3 (a pipe): the path of its standard input (empty for
 * /dev/null) on a line, then the command and a NUL. Input is read whole before the command is
 * handed over (a request cut short is never run) into a memory file, opened by the command
 * through /proc/<this server>/fd: a regular file, so a command may seek it or read it twice.
 *
 * Like qemu-ga, the answer waits until every writer has closed the command's output (processes
 * the command left running with it open hold the answer), keeps the cap of each stream and
 * reads on past it, dropping the rest (the size in the answer is what was written). A timeout
 * is the host's to enforce: it ends the command's process tree through the agent, found by the
 * PID written to <dir>.id ("E <id> <pid>") before the command is handed over; the PID's parent
 * is this server, so a late kill can never hit another request, and a command whose shell the
 * kill ended before the hand-over is never run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OUTPUT_CAP
#error "OUTPUT_CAP (bytes kept of each stream) comes from the build"
#endif
#ifndef HELLO
#error "HELLO (the hello's answer) comes from the build"
#endif

/* A request's header and command; the holder sends commands of 16 KiB at most. */
#define REQUEST_MAX (64 * 1024 - 256)

extern char **environ;

static int port = -1;
static const char *port_path;
static const char *dir;
static const char *shell;
static const char *script;
static int id_fd = -1;

static char in_buf[64 * 1024];
static size_t in_len;

/* Page-aligned, so that their memory can be given back after a large output (madvise). */
static char out[OUTPUT_CAP] __attribute__((aligned(4096)));
static char err[OUTPUT_CAP] __attribute__((aligned(4096)));

static void pause_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) < 0 && errno == EINTR) {
  }
}

/* Opens the port (a device that is not there yet, or still held, is waited for). */
static void open_port(void) {
  if (strcmp(port_path, "-") == 0) {
    port = fcntl(3, F_DUPFD_CLOEXEC, 10);
    if (port < 0) {
      perror("fleetbox-exec: fd 3");
      exit(1);
    }
    close(3);
    return;
  }
  while ((port = open(port_path, O_RDWR | O_CLOEXEC)) < 0) pause_ms(1000);
}

/*
 * More bytes from the port into in_buf. False when the host is gone: with '-' that is the end
 * (exit); on a device, the host may come back (a new holder), so whatever was half read is
 * dropped and the next bytes start afresh.
 */
static int fill(void) {
  for (;;) {
    ssize_t n = read(port, in_buf + in_len, sizeof in_buf - in_len);
    if (n > 0) {
      in_len += (size_t)n;
      return 1;
    }
    if (n < 0 && errno == EINTR) continue;
    if (strcmp(port_path, "-") == 0) exit(0);
    /* No host on the port: a read ends at once, so this would spin. A fifth of a second, not
     * the bulk loop's second: a new holder's first command (a clone's, a restored fork's)
     * waits for this. */
    in_len = 0;
    pause_ms(200);
    return 0;
  }
}

static void consume(size_t n) {
  memmove(in_buf, in_buf + n, in_len - n);
  in_len -= n;
}

/* Writes all of it to `fd`; false if its reader went away (the host, or the command's shell). */
static int write_all(int fd, struct iovec *v, int count) {
  while (count > 0) {
    ssize_t n = writev(fd, v, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 0;
    }
    while (count > 0 && (size_t)n >= v->iov_len) {
      n -= (ssize_t)v->iov_len;
      v++;
      count--;
    }
    if (count > 0) {
      v->iov_base = (char *)v->iov_base + n;
      v->iov_len -= (size_t)n;
    }
  }
  return 1;
}

static void send_text(const char *text) {
  struct iovec v = {(void *)text, strlen(text)};
  write_all(port, &v, 1);
}

/*
 * Answers request `id`: the sizes are what the command wrote, of which the cap is sent. Lost
 * with a host that went away, or passed over by the next one (see main's start).
 */
static void send_answer(const char *id, int code, unsigned long long out_size, unsigned long long err_size) {
  char header[160], trailer[80];
  snprintf(header, sizeof header, "X %s %d %llu %llu\n", id, code, out_size, err_size);
  snprintf(trailer, sizeof trailer, "Z %s\n", id);
  struct iovec v[4] = {
      {header, strlen(header)},
      {out, out_size < OUTPUT_CAP ? (size_t)out_size : OUTPUT_CAP},
      {err, err_size < OUTPUT_CAP ? (size_t)err_size : OUTPUT_CAP},
      {trailer, strlen(trailer)},
  };
  write_all(port, v, 4);
}

/* Answers request `id` with no command run: `why` is its stderr. */
static void send_failure(const char *id, int code, const char *why) {
  size_t len = strlen(why);
  memcpy(err, why, len);
  send_answer(id, code, 0, len);
}

/* What a request the server does not know (or cannot read) gets: the host gives the port up. */
static void send_unknown(const char *word) {
  char unknown[96];
  snprintf(unknown, sizeof unknown, "? %s\n", word);
  send_text(unknown);
}

/* The command's shell, started ahead, and its ends of the pipes. */
struct child {
  pid_t pid;
  int request; /* write end: the input's path and the command */
  int out, err; /* read ends */
};

static void default_signals(void) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
}

/* With no <shell>: waits for the command on fd `from`, then execs /bin/sh -c <command>. */
static void exec_when_asked(int from) {
  static char request[REQUEST_MAX + 4096];
  size_t len = 0;
  ssize_t n;
  while (len < sizeof request && (n = read(from, request + len, sizeof request - len)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) _exit(0);
    len += (size_t)n;
  }
  char *line = memchr(request, '\n', len);
  char *end = line ? memchr(line, '\0', len - (size_t)(line - request)) : NULL;
  /* Not handed a whole command (the server went away): nothing runs. */
  if (!end) _exit(0);
  *line = '\0';
  if (line > request) {
    int input = open(request, O_RDONLY);
    if (input < 0 || dup2(input, 0) < 0) {
      perror("fleetbox-exec: the command's input");
      _exit(126);
    }
    close(input);
  }
  char *argv[] = {"/bin/sh", "-c", line + 1, NULL};
  execve("/bin/sh", argv, environ);
  perror("fleetbox-exec: /bin/sh");
  _exit(127);
}

static int start_child(struct child *c) {
  int request[2], o[2], e[2];
  if (pipe2(request, O_CLOEXEC) < 0) return 0;
  if (pipe2(o, O_CLOEXEC) < 0) {
    close(request[0]), close(request[1]);
    return 0;
  }
  if (pipe2(e, O_CLOEXEC) < 0) {
    close(request[0]), close(request[1]), close(o[0]), close(o[1]);
    return 0;
  }
  pid_t pid = fork();
  if (pid == 0) {
    /* The server's ends: the request pipe ends when the server closes its end. */
    close(request[1]), close(o[0]), close(e[0]);
    default_signals();
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(o[1], 1) < 0 || dup2(e[1], 2) < 0) _exit(126);
    if (null > 2) close(null);
    if (!shell[0]) exec_when_asked(request[0]);
    /* dup2 onto itself would leave it close-on-exec. */
    if (request[0] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(request[0], 3) < 0) _exit(126);
    char *argv[] = {(char *)shell, "-c", (char *)script, "/bin/sh", NULL};
    execve(shell, argv, environ);
    perror("fleetbox-exec: the command's shell");
    _exit(127);
  }
  close(request[0]), close(o[1]), close(e[1]);
  if (pid < 0) {
    close(request[1]), close(o[0]), close(e[0]);
    return 0;
  }
  *c = (struct child){pid, request[1], o[0], e[0]};
  return 1;
}

/* Its ends of the pipes, once it is gone. */
static void drop_child(struct child *c) {
  close(c->request), close(c->out), close(c->err);
}

/* Says which request runs, for the host's kill: "E <id> <pid>". */
static void note_running(const char *id, pid_t pid) {
  char line[96];
  int n = snprintf(line, sizeof line, "E %s %d\n", id, (int)pid);
  /* Failing, the kill waits (bounded) and ends nothing; the command still runs. */
  if (ftruncate(id_fd, 0) < 0 || pwrite(id_fd, line, (size_t)n, 0) < 0) perror("fleetbox-exec: naming the running request");
}

/* Reads a request line: false when the host went away before it was whole. */
static int read_line(char **line, size_t *len) {
  char *nl;
  while (!(nl = memchr(in_buf, '\n', in_len))) {
    if (in_len == sizeof in_buf) in_len = 0; /* no request is this long: not one of ours */
    if (!fill()) return 0;
  }
  *line = in_buf;
  *len = (size_t)(nl - in_buf);
  *nl = '\0';
  return 1;
}

/*
 * Takes requests until a command (with its input) has come whole: hellos and requests it does
 * not know are answered on the way. Returns the command's length (it is at the start of
 * in_buf, NUL-ended) and the id; the input is in *input (-1 for none).
 */
static size_t take_request(char *id, size_t id_size, int *input) {
  for (;;) {
    char *line;
    size_t len;
    *input = -1;
    if (!read_line(&line, &len)) continue;
    char op[8] = "", word[64] = "";
    unsigned long long size = 0;
    int fields = sscanf(line, "%7s %63s %llu", op, word, &size);
    consume(len + 1);
    if (fields >= 2 && strcmp(op, "H") == 0) {
      char hello[4400];
      snprintf(hello, sizeof hello, "%s %s %d %s\n", HELLO, word, (int)getpid(), dir);
      send_text(hello);
      continue;
    }
    if (fields != 3 || strcmp(op, "E") != 0) {
      send_unknown(word);
      continue;
    }
    /* The command, up to its NUL. */
    char *nul;
    while (!(nul = memchr(in_buf, '\0', in_len)) && in_len < REQUEST_MAX && fill()) {
    }
    if (!nul && in_len >= REQUEST_MAX) {
      /* Longer than any command the holder sends: out of step, and the host is told so. */
      in_len = 0;
      send_unknown(word);
    }
    /* Else the host went away mid-command: never run. */
    if (!nul) continue;
    size_t command = (size_t)(nul - in_buf) + 1;
    if (size > 0) {
      /* The input: what came with the command first, then straight from the port, all of it
       * read off the port even when it cannot be kept (the port stays in step). */
      *input = memfd_create("fleetbox-exec-input", MFD_CLOEXEC);
      int kept = *input >= 0;
      size_t have = in_len - command < size ? in_len - command : (size_t)size;
      unsigned long long left = size - have;
      kept = kept && write(*input, in_buf + command, have) == (ssize_t)have;
      memmove(in_buf + command, in_buf + command + have, in_len - command - have);
      in_len -= have;
      int whole = 1;
      while (left > 0) {
        /* Read into in_buf's free tail, past the command. */
        size_t room = sizeof in_buf - in_len;
        ssize_t n = read(port, in_buf + in_len, left < room ? (size_t)left : room);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          whole = 0;
          break;
        }
        kept = kept && write(*input, in_buf + in_len, (size_t)n) == n;
        left -= (unsigned long long)n;
      }
      if (!whole || !kept) {
        if (*input >= 0) close(*input);
        *input = -1;
      }
      if (!whole) {
        /* Cut short (the host went away): never run. */
        in_len = 0;
        if (strcmp(port_path, "-") == 0) exit(0);
        continue;
      }
      if (!kept) {
        send_failure(word, 126, "fleetbox-exec: no room for the command's input in the guest's memory\n");
        consume(command);
        continue;
      }
    }
    snprintf(id, id_size, "%s", word);
    return command;
  }
}

/* Reads the command's output until both streams are closed; the sizes are what was written. */
static void collect(struct child *c, unsigned long long *out_size, unsigned long long *err_size) {
  static char drop[65536];
  struct pollfd p[2] = {{c->out, POLLIN, 0}, {c->err, POLLIN, 0}};
  char *bufs[2] = {out, err};
  unsigned long long *sizes[2] = {out_size, err_size};
  *out_size = *err_size = 0;
  int open_streams = 2;
  while (open_streams > 0) {
    if (poll(p, 2, -1) < 0) {
      /* EINTR, or no memory for a moment (ENOMEM): the streams are still there. */
      if (errno != EINTR) pause_ms(10);
      continue;
    }
    for (int k = 0; k < 2; k++) {
      if (p[k].fd < 0 || !p[k].revents) continue;
      unsigned long long have = *sizes[k];
      char *to = have < OUTPUT_CAP ? bufs[k] + have : drop;
      size_t room = have < OUTPUT_CAP ? OUTPUT_CAP - (size_t)have : sizeof drop;
      ssize_t n = read(p[k].fd, to, room);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        p[k].fd = -1;
        open_streams--;
      } else {
        *sizes[k] += (unsigned long long)n;
      }
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: fleetbox-exec <port device | -> <dir> <shell or ''> <request script>\n");
    return 2;
  }
  port_path = argv[1], dir = argv[2], shell = argv[3], script = argv[4];
  /*
   * A write to a host that went away fails (EPIPE, not a signal: a socket pair) or, on a virtio
   * port, waits until a host connects, which passes over what comes before its hello's answer.
   * Children are reaped here (waitpid), never ignored.
   */
  signal(SIGPIPE, SIG_IGN);
  /* An input over a file size limit is a failed write too (its command answers 126). */
  signal(SIGXFSZ, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  char id_path[4096];
  snprintf(id_path, sizeof id_path, "%s.id", dir);
  id_fd = open(id_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (id_fd < 0) {
    perror(id_path);
    return 1;
  }
  open_port();
  struct child c;
  int ready = 0;
  for (;;) {
    /* The next command's shell, before its request. */
    while (!ready && !(ready = start_child(&c))) pause_ms(1000);
    char id[64];
    int input;
    size_t command = take_request(id, sizeof id, &input);
    char proc_path[64] = "";
    if (input >= 0) snprintf(proc_path, sizeof proc_path, "/proc/%d/fd/%d", (int)getpid(), input);
    /*
     * A shell that died while it waited (killed, or it could not start) is replaced before its
     * PID is written for the host's kill. Once it is written, the command goes to that shell or
     * nowhere: the host's kill of a timed-out request may already have ended it, and a command
     * is never run after its kill.
     */
    if (ready && waitpid(c.pid, NULL, WNOHANG) == c.pid) {
      drop_child(&c);
      ready = 0;
    }
    if (!ready) ready = start_child(&c);
    if (!ready) {
      send_failure(id, 127, "fleetbox-exec: the command's shell could not be started\n");
    } else {
      note_running(id, c.pid);
      struct iovec v[3] = {{proc_path, strlen(proc_path)}, {"\n", 1}, {in_buf, command}};
      int handed = write_all(c.request, v, 3);
      close(c.request);
      /* Handed over or not (its reader gone: it is dying), its output and its end are the answer's. */
      unsigned long long out_size, err_size;
      collect(&c, &out_size, &err_size);
      close(c.out), close(c.err);
      int status = 0;
      while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
      }
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (!handed && err_size == 0) {
        send_failure(id, code, "fleetbox-exec: the command's shell ended before it took the command\n");
      } else {
        send_answer(id, code, out_size, err_size);
      }
      /* The memory a large output held is given back now, not when the next one comes. */
      if (out_size > 256 * 1024) madvise(out, OUTPUT_CAP, MADV_DONTNEED);
      if (err_size > 256 * 1024) madvise(err, OUTPUT_CAP, MADV_DONTNEED);
    }
    consume(command);
    ready = 0;
    if (input >= 0) close(input);
    /* A late kill finds no request named; had this failed, it would find this one's PID reaped, its parent not this server. */
    if (ftruncate(id_fd, 0) < 0) perror("fleetbox-exec: clearing the running request");
  }
}
