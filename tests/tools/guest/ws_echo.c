/* ws-echo: the tiny test guest's WebSocket echo server (RFC 6455), built statically by
 * build-tiny-guest.sh, since busybox has none. One process per connection.
 *
 *   ws-echo PORT
 *
 * Any path upgrades. Every data frame comes back as it came (opcode, FIN, payload: fragmentation
 * is kept), unmasked; a ping gets its pong; a close is answered with the same code and reason.
 * Text messages that are commands, like the test upstream's (tests/tools/upstream/upstream.js):
 *   "!ping PAYLOAD"      pings with PAYLOAD and answers "pong:PAYLOAD" when the pong arrives
 *   "!close CODE REASON" closes with that code and reason
 * A request that is not a WebSocket upgrade gets 400. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kMaxRequest = 16384, kMaxPayload = 16 * 1024 * 1024 };

static const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- SHA-1 (FIPS 180-1), only for Sec-WebSocket-Accept ---- */

static uint32_t Rotl(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

static void Sha1Block(uint32_t h[5], const unsigned char block[64]) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = Rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        const uint32_t t = Rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = Rotl(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void Sha1(const unsigned char* data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t done = 0;
    for (; len - done >= 64; done += 64) Sha1Block(h, data + done);
    unsigned char tail[128] = {0};
    const size_t rest = len - done;
    memcpy(tail, data + done, rest);
    tail[rest] = 0x80;
    const size_t tail_len = rest + 9 <= 64 ? 64 : 128;
    const uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    Sha1Block(h, tail);
    if (tail_len == 128) Sha1Block(h, tail + 64);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void Base64(const unsigned char* in, size_t len, char* out) {
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        const uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                           (i + 2 < len ? in[i + 2] : 0);
        out[o++] = kAlphabet[v >> 18 & 63];
        out[o++] = kAlphabet[v >> 12 & 63];
        out[o++] = i + 1 < len ? kAlphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? kAlphabet[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- socket I/O ---- */

static int ReadFull(int fd, void* buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        const ssize_t n = read(fd, (char*)buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

static int WriteFull(int fd, const void* buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        const ssize_t n = write(fd, (const char*)buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

static int SendFrame(int fd, int fin, int opcode, const unsigned char* data, size_t len) {
    unsigned char head[10];
    size_t n = 0;
    head[n++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        head[n++] = (unsigned char)len;
    } else if (len < 65536) {
        head[n++] = 126;
        head[n++] = (unsigned char)(len >> 8);
        head[n++] = (unsigned char)len;
    } else {
        head[n++] = 127;
        for (int i = 7; i >= 0; i--) head[n++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    if (WriteFull(fd, head, n) != 0) return -1;
    return len ? WriteFull(fd, data, len) : 0;
}

static void SendClose(int fd, unsigned code, const char* reason) {
    unsigned char body[125];
    size_t reason_len = strlen(reason);
    if (reason_len > sizeof body - 2) reason_len = sizeof body - 2;
    body[0] = (unsigned char)(code >> 8);
    body[1] = (unsigned char)code;
    memcpy(body + 2, reason, reason_len);
    SendFrame(fd, 1, 0x8, body, reason_len + 2);
}

/* ---- the handshake ---- */

/* The value of header `name` in the request head, trimmed, or NULL. Modifies `head`. */
static char* HeaderValue(char* head, const char* name) {
    const size_t name_len = strlen(name);
    for (char* line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, name_len) != 0 || line[name_len] != ':') continue;
        char* value = line + name_len + 1;
        while (*value == ' ' || *value == '\t') value++;
        char* end = strstr(value, "\r\n");
        if (!end) return NULL;
        while (end > value && (end[-1] == ' ' || end[-1] == '\t')) end--;
        *end = '\0';
        return value;
    }
    return NULL;
}

static int Handshake(int fd) {
    char head[kMaxRequest + 1];
    size_t len = 0;
    while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
        if (len == kMaxRequest) return -1;
        /* Byte by byte: nothing after the head may be consumed (a client may send frames at once).
         */
        if (ReadFull(fd, head + len, 1) != 0) return -1;
        len++;
    }
    head[len] = '\0';
    char key_line[kMaxRequest + 1];
    char upgrade_line[kMaxRequest + 1];
    memcpy(key_line, head, len + 1);
    memcpy(upgrade_line, head, len + 1);
    const char* key = HeaderValue(key_line, "Sec-WebSocket-Key");
    const char* upgrade = HeaderValue(upgrade_line, "Upgrade");
    if (strncmp(head, "GET ", 4) != 0 || !key || !upgrade ||
        strcasecmp(upgrade, "websocket") != 0 || strlen(key) > 64) {
        static const char kRefusal[] =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 27\r\n"
            "Connection: close\r\n\r\nA WebSocket upgrade only.\r\n";
        WriteFull(fd, kRefusal, sizeof kRefusal - 1);
        return -1;
    }
    char joined[64 + sizeof kGuid];
    snprintf(joined, sizeof joined, "%s%s", key, kGuid);
    unsigned char digest[20];
    Sha1((const unsigned char*)joined, strlen(joined), digest);
    char accept[32];
    Base64(digest, sizeof digest, accept);
    char reply[256];
    const int n = snprintf(reply, sizeof reply,
                           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                           accept);
    return WriteFull(fd, reply, (size_t)n);
}

/* ---- frames ---- */

static void Serve(int fd) {
    if (Handshake(fd) != 0) return;
    char* pending_ping = NULL; /* payload of our ping whose pong answers with "pong:..." */
    int close_sent = 0;        /* after "!close": the client's close ends it, unanswered */
    for (;;) {
        unsigned char head[2];
        if (ReadFull(fd, head, 2) != 0) break;
        const int fin = head[0] & 0x80;
        const int opcode = head[0] & 0x0f;
        uint64_t len = head[1] & 0x7f;
        if (!(head[1] & 0x80)) { /* clients must mask */
            SendClose(fd, 1002, "unmasked frame");
            break;
        }
        unsigned char ext[8];
        if (len == 126) {
            if (ReadFull(fd, ext, 2) != 0) break;
            len = (uint64_t)ext[0] << 8 | ext[1];
        } else if (len == 127) {
            if (ReadFull(fd, ext, 8) != 0) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | ext[i];
        }
        if (len > kMaxPayload) {
            SendClose(fd, 1009, "frame too big");
            break;
        }
        unsigned char mask[4];
        if (ReadFull(fd, mask, 4) != 0) break;
        unsigned char* payload = malloc(len + 1);
        if (!payload || (len && ReadFull(fd, payload, len) != 0)) {
            free(payload);
            break;
        }
        for (uint64_t i = 0; i < len; i++) payload[i] ^= mask[i % 4];
        payload[len] = '\0';
        int done = 0;
        if (opcode == 0x8) { /* close: answer with the same code and reason, once */
            if (!close_sent) SendFrame(fd, 1, 0x8, payload, len);
            done = 1;
        } else if (opcode == 0x9) {
            SendFrame(fd, 1, 0xA, payload, len);
        } else if (opcode == 0xA) {
            if (pending_ping) {
                char answer[160];
                const int n = snprintf(answer, sizeof answer, "pong:%s", (const char*)payload);
                SendFrame(fd, 1, 0x1, (const unsigned char*)answer, (size_t)n);
                free(pending_ping);
                pending_ping = NULL;
            }
        } else if (fin && opcode == 0x1 && strncmp((const char*)payload, "!ping ", 6) == 0 &&
                   len - 6 <= 125) {
            free(pending_ping);
            pending_ping = strdup((const char*)payload + 6);
            SendFrame(fd, 1, 0x9, payload + 6, len - 6);
        } else if (fin && opcode == 0x1 && strncmp((const char*)payload, "!close ", 7) == 0) {
            char* reason = NULL;
            const unsigned long code = strtoul((const char*)payload + 7, &reason, 10);
            while (reason && *reason == ' ') reason++;
            SendClose(fd, (unsigned)code, reason ? reason : "");
            close_sent = 1;
            /* Wait for the client's close in answer, then end. */
        } else {
            SendFrame(fd, fin, opcode, payload, len);
        }
        free(payload);
        if (done) break;
    }
    free(pending_ping);
    shutdown(fd, SHUT_WR);
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: ws-echo PORT\n");
        return 2;
    }
    const int port = atoi(argv[1]);
    signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
    signal(SIGPIPE, SIG_IGN);
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    const int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (listener < 0 || bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 ||
        listen(listener, 64) != 0) {
        perror("ws-echo");
        return 1;
    }
    for (;;) {
        const int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("ws-echo: accept");
            sleep(1);
            continue;
        }
        const pid_t child = fork();
        if (child == 0) {
            close(listener);
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
            Serve(fd);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
}
