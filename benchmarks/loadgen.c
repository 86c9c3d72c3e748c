/* loadgen.c: the load benchmark's flood generator, in C, so that the figures are the server's.
 *
 * How this works
 * --------------
 * One process, one thread, epoll (level-triggered), non-blocking sockets on 127.0.0.1. It plays
 * N plain-text members of a chat server (Parley's text peers, `ncat --chat`, the C floor
 * broker), joins them all, and waits for "go" on stdin (the barrier: the parent samples the
 * server's CPU first). Then every member sends M numbered lines, `@<sender>,<seq>,<ns>`:
 *   line   one line per send(), round after round (each loop turn: the next line of every
 *          member whose previous line is wholly in the kernel, then one epoll pass for replies);
 *   bulk   all M lines in one send() per member;
 *   paced  RATE lines a second per member from a random phase.
 * <ns> is CLOCK_MONOTONIC read just before the send() that hands the line to the kernel, so a
 * line's latency (receive time minus <ns>) counts everything from then on: the kernel's
 * buffers on both sides, the server's queues, the server's work. A member whose line the
 * kernel did not take whole (EAGAIN: the server is not reading, backpressure) sends the rest
 * when the socket is writable and no new line until then.
 *
 * Every receiver checks, per sender, which numbers it has seen (distinct deliveries,
 * duplicates, a lower number after a higher one, its own lines echoed, garbled lines, lines
 * credited to another member's name) and keeps every latency; the receive time of a read is
 * taken once per recv(). ncat prefixes each relayed read with "<userN> ", wherever that falls
 * in a line, so its stream is split at the prefixes and each sender's bytes are joined into
 * lines separately (as benchmarks/load.py's NcatLines does).
 *
 * Over TLS (--tls, when built with -DLOADGEN_TLS and OpenSSL: the benchmark builds loadgen-tls
 * that way beside the plain one) every member runs a non-blocking TLS client (no verification:
 * the servers sign their own certificates); --kind app plays Parley's own app members (JSON
 * lines: a hello after the host's greeting, `{"type":"msg","text":"@..."}` out, the host's
 * `msg` frames in, timed the same way), --kind ncat the text members of `ncat --ssl --chat`.
 *
 * Bounded: joining ends at --join-timeout; a measurement ends when every expected delivery
 * arrived, at --deadline, or after --stall seconds without a new delivery (3x that while
 * lines are still waiting to be sent: a frozen server). The result is one JSON line on stdout.
 *
 * Build: cc -O2 -o loadgen loadgen.c       (the benchmark does this into build/bench/)
 *        cc -O2 -DLOADGEN_TLS -o loadgen-tls loadgen.c -lssl -lcrypto
 * Usage: loadgen --port P --kind parley|app|ncat|floor -n N -m M [--mode line|bulk|paced]
 *                [--tls] [--version V (app: the protocol version of its hello)]
 *                [--rate R] [--deadline S] [--stall S] [--join-timeout S] [--concurrency K]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef LOADGEN_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

enum { K_PARLEY, K_NCAT, K_FLOOR, K_APP };
enum { M_LINE, M_BULK, M_PACED };
#define RBUF (256 * 1024)
#define NAME 64

typedef struct {          /* ncat: one sender's partial line at one receiver */
    int tag;              /* ncat's user number, -1 for <announce> */
    char *buf; size_t len, cap;
} part;

typedef struct {
    int fd, idx;
    int connected, greeted, joined, lost;
    char name[NAME];      /* as the server calls it: guestN, userN, "" (floor) */
    char *in; size_t inlen, incap;       /* partial line (parley, floor) */
    part *parts; int nparts, partcap;    /* ncat: per-sender partial lines */
    char held[64]; size_t heldlen;       /* ncat: a prefix cut at the end of a read */
    int tag;                             /* ncat: the sender of the bytes now arriving */
    char *out; size_t outoff, outlen, outcap;  /* bytes the kernel has not taken yet */
    int want_out;
    int next_seq;
    int64_t next_due;                    /* paced: when the next line goes */
    unsigned char *seen;                 /* senders x lines */
    int *highest;
#ifdef LOADGEN_TLS
    SSL *ssl;                            /* NULL: plain TCP */
    int handshaken;
#endif
} member;

static int kind, mode, n, m, ep;
static double rate = 2.0, deadline_s = 60, stall_s = 3, join_s = 90;
static int concurrency = 1000, port, use_tls, version = 2;
#ifdef LOADGEN_TLS
static SSL_CTX *tls_ctx;
#endif
static member *mem;
static int64_t *lat; static size_t nlat, latcap;
static long long delivered, expected, duplicates, reordered, echoes, garbled, misattributed;
static int64_t last_ns;

static int64_t now_ns(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}
static double cpu_s(void) {
    struct rusage u; getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
static void die(const char *w) { perror(w); exit(2); }
static void grow(char **b, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    if (!(*b = realloc(*b, c))) die("realloc");
    *cap = c;
}

static void set_out(member *c, int on) {
    if (c->want_out == on || c->lost) return;
    struct epoll_event e = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = (uint32_t)c->idx };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    c->want_out = on;
}

static void lose(member *c) {
    if (c->lost) return;
    c->lost = 1;
#ifdef LOADGEN_TLS
    if (c->ssl) { SSL_free(c->ssl); c->ssl = NULL; }
#endif
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

/* send()/recv(), or their TLS forms: -1 with errno EAGAIN when the socket (or TLS) must wait,
 * -1 with another errno when the connection is gone, 0 from io_recv when the server closed. */
static ssize_t io_send(member *c, const char *p, size_t len) {
#ifdef LOADGEN_TLS
    if (c->ssl) {
        int w = SSL_write(c->ssl, p, len > (1 << 30) ? (1 << 30) : (int)len);
        if (w > 0) return w;
        int e = SSL_get_error(c->ssl, w);
        errno = (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? EAGAIN : EPIPE;
        return -1;
    }
#endif
    return send(c->fd, p, len, MSG_NOSIGNAL);
}

static ssize_t io_recv(member *c, char *p, size_t len) {
#ifdef LOADGEN_TLS
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)len);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) { errno = EAGAIN; return -1; }
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        errno = ECONNRESET;
        return -1;
    }
#endif
    return recv(c->fd, p, len, 0);
}

/* Hand bytes to the kernel; what it does not take waits in c->out for EPOLLOUT. */
static void put(member *c, const char *p, size_t len) {
    if (c->lost) return;
    if (c->outlen == c->outoff) {
        ssize_t w = io_send(c, p, len);
        if (w < 0) { if (errno != EAGAIN && errno != EWOULDBLOCK) { lose(c); return; } w = 0; }
        p += w; len -= (size_t)w;
        if (!len) return;
        c->outoff = c->outlen = 0;
    }
    grow(&c->out, &c->outcap, c->outlen + len);
    memcpy(c->out + c->outlen, p, len); c->outlen += len;
    set_out(c, 1);
}

static void flush_out(member *c) {
    while (c->outoff < c->outlen) {
        ssize_t w = io_send(c, c->out + c->outoff, c->outlen - c->outoff);
        if (w < 0) { if (errno == EAGAIN || errno == EWOULDBLOCK) return; lose(c); return; }
        c->outoff += (size_t)w;
    }
    c->outoff = c->outlen = 0;
    set_out(c, 0);
}

static int pending(const member *c) { return c->outoff < c->outlen; }

/* --- what a member receives ------------------------------------------------------------- */

static void joined(member *c) { if (!c->joined) c->joined = 1; }

static void control(member *c, const char *line, size_t len) {
    if (kind == K_PARLEY) {
        static const char you[] = "* You are ";
        if (!c->name[0] && len > sizeof you - 1 && !memcmp(line, you, sizeof you - 1)) {
            const char *s = line + sizeof you - 1, *e = s;
            while (e < line + len && *e != '.' && e - s < NAME - 1) e++;
            memcpy(c->name, s, (size_t)(e - s)); c->name[e - s] = 0;
            joined(c);
        }
    } else if (kind == K_NCAT) {
        const char *as = memmem(line, len, " is connected as <", 18);
        if (as && !c->name[0]) {
            const char *s = as + 18, *e = memchr(s, '>', (size_t)(line + len - s));
            if (e && e - s < NAME) { memcpy(c->name, s, (size_t)(e - s)); c->name[e - s] = 0; }
        } else if (len >= 18 && !memcmp(line, "already connected:", 18)) {
            joined(c);
        }
    }
}

static void delivery(member *c, const char *who, size_t wholen, const char *line, size_t len,
                     int64_t t) {
    long long v[3]; int k = 0; const char *p = line + 1, *end = line + len;
    while (k < 3 && p < end) {
        long long x = 0; int digits = 0;
        while (p < end && *p >= '0' && *p <= '9') { x = x * 10 + (*p - '0'); p++; digits++; }
        if (!digits) break;
        v[k++] = x;
        if (p < end && *p == ',') p++; else break;
    }
    if (k < 3 || v[0] < 0 || v[0] >= n || v[1] < 0 || v[1] >= m) { garbled++; return; }
    int s = (int)v[0], q = (int)v[1];
    if (s == c->idx) { if (kind != K_APP) echoes++; return; }  /* app: its confirmation */
    if (kind != K_FLOOR) {
        const char *want = mem[s].name;
        if (strlen(want) != wholen || memcmp(want, who, wholen)) misattributed++;
    }
    size_t key = (size_t)s * (size_t)m + (size_t)q;
    if (c->seen[key]) { duplicates++; return; }
    c->seen[key] = 1;
    if (q < c->highest[s]) reordered++; else c->highest[s] = q;
    delivered++;
    last_ns = t;
    if (nlat == latcap) {
        latcap = latcap ? latcap * 2 : 1 << 16;
        if (!(lat = realloc(lat, latcap * sizeof *lat))) die("realloc");
    }
    lat[nlat++] = t - v[2];
}

/* The string value of a JSON line's field, `pat` being its `"key":"` (the values read here
 * hold no escapes). The patterns are constants: building them per line with snprintf was
 * most of this generator's CPU per delivery over TLS, and it shares the host's 2 cores. */
#define KEY(k) "\"" k "\":\""
static const char *json_str(const char *line, size_t len, const char *pat, size_t *vlen) {
    size_t pl = strlen(pat);
    const char *v = memmem(line, len, pat, pl);
    if (!v) return NULL;
    v += pl;
    const char *e = memchr(v, '"', (size_t)(line + len - v));
    if (!e) return NULL;
    *vlen = (size_t)(e - v);
    return v;
}

/* Parley's app protocol: a `msg` frame is a delivery, a `welcome` says the member is in. */
static void app_line_in(member *c, const char *line, size_t len, int64_t t) {
    static const char msg[] = "{\"type\":\"msg\",", welcome[] = "{\"type\":\"welcome\",";
    size_t wl, tl;
    if (len > sizeof msg - 1 && !memcmp(line, msg, sizeof msg - 1)) {
        const char *who = json_str(line, len, KEY("from"), &wl),
                   *text = json_str(line, len, KEY("text"), &tl);
        if (who && text && tl && text[0] == '@') delivery(c, who, wl, text, tl, t);
        else garbled++;
    } else if (len > sizeof welcome - 1 && !memcmp(line, welcome, sizeof welcome - 1)) {
        const char *name = json_str(line, len, KEY("name"), &wl);
        if (name && !c->name[0] && wl < NAME) { memcpy(c->name, name, wl); c->name[wl] = 0; }
        joined(c);
    }
}

/* One whole line from `who` (ncat's tag; parley's name is inside the line). */
static void line_in(member *c, int tag, const char *line, size_t len, int64_t t) {
    if (kind == K_APP) { app_line_in(c, line, len, t); return; }
    if (kind == K_FLOOR) { if (len && line[0] == '@') delivery(c, "", 0, line, len, t); else garbled++; return; }
    if (kind == K_NCAT) {
        if (tag < 0) { control(c, line, len); return; }
        char who[NAME]; int w = snprintf(who, sizeof who, "user%d", tag);
        if (len && line[0] == '@') delivery(c, who, (size_t)w, line, len, t); else garbled++;
        return;
    }
    if (!len || line[0] == '*' || line[0] == '!' || (len >= 7 && !memcmp(line, "PARLEY/", 7))) {
        control(c, line, len); return;
    }
    const char *sep = memmem(line, len, ": ", 2);
    if (sep && sep + 2 < line + len && sep[2] == '@')
        delivery(c, line, (size_t)(sep - line), sep + 2, (size_t)(line + len - sep - 2), t);
    else
        control(c, line, len);
}

/* Bytes for (tag), joined into lines with what came before from the same sender. */
static void lines_in(member *c, char **buf, size_t *blen, size_t *bcap, int tag,
                     const char *p, size_t len, int64_t t) {
    const char *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) { grow(buf, bcap, *blen + (size_t)(end - p)); memcpy(*buf + *blen, p, (size_t)(end - p)); *blen += (size_t)(end - p); return; }
        if (*blen) {
            grow(buf, bcap, *blen + (size_t)(nl - p));
            memcpy(*buf + *blen, p, (size_t)(nl - p));
            size_t l = *blen + (size_t)(nl - p); *blen = 0;
            line_in(c, tag, *buf, l, t);
        } else {
            line_in(c, tag, p, (size_t)(nl - p), t);
        }
        p = nl + 1;
    }
}

static part *part_of(member *c, int tag) {
    for (int i = 0; i < c->nparts; i++) if (c->parts[i].tag == tag) return &c->parts[i];
    if (c->nparts == c->partcap) {
        c->partcap = c->partcap ? c->partcap * 2 : 8;
        if (!(c->parts = realloc(c->parts, (size_t)c->partcap * sizeof *c->parts))) die("realloc");
    }
    part *pt = &c->parts[c->nparts++];
    memset(pt, 0, sizeof *pt); pt->tag = tag;
    return pt;
}

static void ncat_chunk(member *c, const char *p, size_t len, int64_t t) {
    if (!len) return;
    part *pt = part_of(c, c->tag);
    lines_in(c, &pt->buf, &pt->len, &pt->cap, c->tag, p, len, t);
}

/* ncat: split at "<userN> " / "<announce> " prefixes (payloads hold no '<'). */
static void ncat_in(member *c, char *data, size_t len, int64_t t) {
    static char *work; static size_t wcap;
    size_t total = c->heldlen + len;
    grow(&work, &wcap, total);
    memcpy(work, c->held, c->heldlen); memcpy(work + c->heldlen, data, len);
    c->heldlen = 0;
    size_t cut = total;
    char *lt = memrchr(work, '<', total);
    if (lt) {
        char *gt = memchr(lt, '>', (size_t)(work + total - lt));
        if ((!gt || gt + 1 >= work + total) && (size_t)(work + total - lt) <= sizeof c->held) {
            cut = (size_t)(lt - work);
            c->heldlen = total - cut; memcpy(c->held, lt, c->heldlen);
        }
    }
    char *p = work, *end = work + cut;
    while (p < end) {
        char *q = memchr(p, '<', (size_t)(end - p));
        if (!q) { ncat_chunk(c, p, (size_t)(end - p), t); break; }
        char *gt = memchr(q, '>', (size_t)(end - q));
        int tag = -2;
        if (gt && gt + 1 < end && gt[1] == ' ') {
            if (gt - q == 9 && !memcmp(q + 1, "announce", 8)) tag = -1;
            else if (gt - q > 5 && !memcmp(q + 1, "user", 4)) tag = atoi(q + 5);
        }
        if (tag == -2) { ncat_chunk(c, p, (size_t)(q + 1 - p), t); p = q + 1; continue; }
        ncat_chunk(c, p, (size_t)(q - p), t);
        c->tag = tag;
        p = gt + 2;
    }
}

static void readable(member *c) {
    static char rb[RBUF];
    for (;;) {
        ssize_t r = io_recv(c, rb, sizeof rb);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) { lose(c); return; }
        if (r < 0) return;
        int64_t t = now_ns();
        if (!c->greeted && kind == K_APP) {  /* the host's greeting: say hello */
            char hello[96];
            int l = snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"version\":%d,\"name\":\"m%d\"}\n",
                             version, c->idx);
            put(c, hello, (size_t)l);
        }
        c->greeted = 1;
        if (kind == K_NCAT) ncat_in(c, rb, (size_t)r, t);
        else lines_in(c, &c->in, &c->inlen, &c->incap, -1, rb, (size_t)r, t);
        if (c->lost) return;
#ifdef LOADGEN_TLS
        if (c->ssl) continue;  /* TLS hands out one record a call: read until it must wait */
#endif
        if ((size_t)r < sizeof rb) return;
    }
}

/* --- joining ---------------------------------------------------------------------------- */

static int open_one(member *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) { close(fd); return -1; }
    c->fd = fd;
    struct epoll_event e = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)c->idx };
    c->want_out = 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    return 0;
}

static void on_event(member *c, uint32_t events) {
    if (c->lost) return;
    if (!c->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0; socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) { lose(c); return; }
        c->connected = 1;
        set_out(c, 0);
        if (kind == K_FLOOR) { c->greeted = 1; joined(c); }
#ifdef LOADGEN_TLS
        if (use_tls) {
            if (!(c->ssl = SSL_new(tls_ctx))) { lose(c); return; }
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
            SSL_set_connect_state(c->ssl);
        }
#endif
    }
#ifdef LOADGEN_TLS
    if (c->ssl && !c->handshaken) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) set_out(c, 0);
            else if (e == SSL_ERROR_WANT_WRITE) set_out(c, 1);
            else lose(c);
            return;
        }
        c->handshaken = 1;
        set_out(c, pending(c));
    }
#endif
    if (events & EPOLLOUT && c->connected) flush_out(c);
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) readable(c);
}

static int poll_once(int timeout_ms) {
    struct epoll_event evs[512];
    int k = epoll_wait(ep, evs, 512, timeout_ms);
    if (k < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < k; i++) on_event(&mem[evs[i].data.u32], evs[i].events);
    return k;
}

/* --- sending ---------------------------------------------------------------------------- */

/* One numbered line as this kind of member sends it. */
static int frame(char *b, size_t cap, int idx, int seq, long long ns) {
    if (kind == K_APP)
        return snprintf(b, cap, "{\"type\":\"msg\",\"text\":\"@%d,%d,%lld\"}\n", idx, seq, ns);
    return snprintf(b, cap, "@%d,%d,%lld\n", idx, seq, ns);
}

static int send_line(member *c) {
    char b[128];
    int l = frame(b, sizeof b, c->idx, c->next_seq, (long long)now_ns());
    put(c, b, (size_t)l);
    c->next_seq++;
    return !c->lost;
}

static void send_bulk(member *c) {
    char *b = malloc((size_t)m * 96 + 1); size_t l = 0;
    long long t = (long long)now_ns();
    for (int q = 0; q < m; q++) l += (size_t)frame(b + l, 96, c->idx, q, t);
    put(c, b, l);
    free(b);
    c->next_seq = m;
}

static int by_value(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted latencies (as benchmarks/_common.percentile). */
static int64_t pct(double q) {
    if (!nlat) return -1;
    double r = q / 100.0 * (double)nlat + 0.5;
    size_t rank = r < 1 ? 1 : (size_t)r > nlat ? nlat : (size_t)r;
    return lat[rank - 1];
}

int main(int argc, char **argv) {
    const char *kind_s = "parley", *mode_s = "line";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--kind")) kind_s = v;
        else if (!strcmp(k, "-n")) n = atoi(v);
        else if (!strcmp(k, "-m")) m = atoi(v);
        else if (!strcmp(k, "--mode")) mode_s = v;
        else if (!strcmp(k, "--rate")) rate = atof(v);
        else if (!strcmp(k, "--deadline")) deadline_s = atof(v);
        else if (!strcmp(k, "--stall")) stall_s = atof(v);
        else if (!strcmp(k, "--join-timeout")) join_s = atof(v);
        else if (!strcmp(k, "--concurrency")) concurrency = atoi(v);
        else if (!strcmp(k, "--version")) version = atoi(v);
        else if (!strcmp(k, "--tls")) { use_tls = !strcmp(v, "1") || !strcmp(v, "yes"); }
        else { fprintf(stderr, "unknown option %s\n", k); return 2; }
    }
    kind = !strcmp(kind_s, "ncat") ? K_NCAT : !strcmp(kind_s, "floor") ? K_FLOOR
         : !strcmp(kind_s, "app") ? K_APP : K_PARLEY;
#ifdef LOADGEN_TLS
    if (use_tls) {
        if (!(tls_ctx = SSL_CTX_new(TLS_client_method()))) { fprintf(stderr, "no TLS context\n"); return 2; }
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);  /* the servers self-sign */
    }
#else
    if (use_tls) { fprintf(stderr, "built without TLS (-DLOADGEN_TLS)\n"); return 2; }
#endif
    mode = !strcmp(mode_s, "bulk") ? M_BULK : !strcmp(mode_s, "paced") ? M_PACED : M_LINE;
    if (n < 2 || m < 1 || port <= 0 || concurrency < 1) { fprintf(stderr, "need --port, -n >= 2, -m >= 1\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl);
    ep = epoll_create1(0);
    mem = calloc((size_t)n, sizeof *mem);
    for (int i = 0; i < n; i++) {
        mem[i].idx = i; mem[i].tag = -1; mem[i].fd = -1;
        mem[i].seen = calloc((size_t)n * (size_t)m, 1);
        mem[i].highest = malloc((size_t)n * sizeof(int));
        for (int s = 0; s < n; s++) mem[i].highest[s] = -1;
    }

    /* Join: at most `concurrency` members connected but not yet greeted at once. */
    int64_t end = now_ns() + (int64_t)(join_s * 1e9);
    int opened = 0, in = 0;
    while (now_ns() < end) {
        int waiting = 0; in = 0;
        for (int i = 0; i < opened; i++) {
            if (mem[i].lost) continue;
            if (!mem[i].greeted) waiting++;
            if (mem[i].joined) in++;
        }
        while (opened < n && waiting < concurrency) {
            if (open_one(&mem[opened]) < 0) mem[opened].lost = 1; else waiting++;
            opened++;
        }
        if (opened == n && in == n) break;
        int lost = 0;
        for (int i = 0; i < opened; i++) lost += mem[i].lost;
        if (opened == n && in + lost == n) break;
        poll_once(50);
    }
    printf("{\"joined\": %d}\n", in);
    fflush(stdout);

    /* The barrier: the parent samples the server, then says go (or anything else: stop). */
    char go[16] = "";
    for (;;) {   /* keep reading what the server says meanwhile (notices) */
        struct pollfd p = { .fd = 0, .events = POLLIN };
        if (poll(&p, 1, 0) > 0) { if (!fgets(go, sizeof go, stdin)) go[0] = 0; break; }
        poll_once(20);
    }
    if (strncmp(go, "go", 2)) return 0;

    int senders = 0;
    for (int i = 0; i < n; i++) senders += mem[i].joined && !mem[i].lost;
    expected = (long long)senders * m * (senders - 1);
    double cpu0 = cpu_s();
    int64_t first = now_ns(), stop = first + (int64_t)(deadline_s * 1e9);
    if (mode == M_PACED) {
        srand(1);
        int64_t interval = (int64_t)(1e9 / rate);
        for (int i = 0; i < n; i++)
            mem[i].next_due = first + 50000000LL + (int64_t)((double)rand() / RAND_MAX * (double)interval);
    }
    if (mode == M_BULK)
        for (int i = 0; i < n; i++) if (mem[i].joined && !mem[i].lost) send_bulk(&mem[i]);

    long long progress = -1; int64_t changed = first; int stalled = 0;
    for (;;) {
        int64_t t = now_ns();
        int more = 0, timeout = 250;
        if (mode == M_LINE) {
            for (int i = 0; i < n; i++) {
                member *c = &mem[i];
                if (!c->joined || c->lost || c->next_seq >= m) continue;
                more = 1;
                if (!pending(c)) send_line(c);
            }
            if (more) timeout = 0;
        } else if (mode == M_PACED) {
            int64_t interval = (int64_t)(1e9 / rate), soonest = INT64_MAX;
            for (int i = 0; i < n; i++) {
                member *c = &mem[i];
                if (!c->joined || c->lost || c->next_seq >= m) continue;
                more = 1;
                if (c->next_due <= t && !pending(c)) { send_line(c); c->next_due += interval; }
                if (c->next_seq < m && c->next_due < soonest) soonest = c->next_due;
            }
            if (soonest != INT64_MAX) {
                int64_t w = (soonest - now_ns()) / 1000000;
                timeout = w < 0 ? 0 : w > 250 ? 250 : (int)w;
            }
        } else {
            for (int i = 0; i < n; i++) if (pending(&mem[i]) && !mem[i].lost) more = 1;
        }
        if (delivered >= expected) break;
        poll_once(timeout);
        t = now_ns();
        if (delivered != progress) { progress = delivered; changed = t; }
        else if (t - changed > (int64_t)((more ? 3 : 1) * stall_s * 1e9)) { stalled = 1; break; }
        if (t > stop) break;
    }
    double cpu1 = cpu_s();
    int dropped = 0;
    for (int i = 0; i < n; i++) dropped += mem[i].joined && mem[i].lost;
    qsort(lat, nlat, sizeof *lat, by_value);
    printf("{\"done\": {\"members_dropped\": %d, \"expected\": %lld, \"delivered\": %lld, "
           "\"lost\": %lld, \"duplicated\": %lld, \"reordered\": %lld, \"echoed\": %lld, "
           "\"garbled\": %lld, \"misattributed\": %lld, \"complete\": %s, \"stalled\": %s, "
           "\"first_ns\": %lld, \"last_ns\": %lld, \"gen_cpu_s\": %.6f, "
           "\"p50_ns\": %lld, \"p90_ns\": %lld, \"p99_ns\": %lld, \"max_ns\": %lld}}\n",
           dropped, expected, delivered, expected - delivered, duplicates, reordered, echoes,
           garbled, misattributed, delivered >= expected ? "true" : "false",
           stalled ? "true" : "false", (long long)first, (long long)(last_ns ? last_ns : now_ns()),
           cpu1 - cpu0, (long long)pct(50), (long long)pct(90), (long long)pct(99),
           (long long)(nlat ? lat[nlat - 1] : -1));
    fflush(stdout);
    char bye[16];
    if (!fgets(bye, sizeof bye, stdin)) return 0;   /* the parent says when members may go */
    return 0;
}
