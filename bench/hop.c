/*
 * The "one hop" row of the keep-alive table: the least any proxy process can do. It answers CONNECT
 * host:PORT by connecting to 127.0.0.1:PORT and then copies bytes both ways: one thread, epoll, no TLS, no
 * parsing beyond the CONNECT line, no logging. What it costs the load is what putting a third process in the
 * path costs on this machine, before any proxy work (the bare Node TLS relay adds TLS on both legs, the caged
 * proxy adds HTTP and policy on top of that).
 *
 * The bench compiles it with the system C compiler (`cc -O2`) into its temp dir and runs it as
 * `hop PORT`; it listens on 127.0.0.1 only and connects only to 127.0.0.1. Not part of the product.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536
#define HEAD_MAX 1024

struct side {
  int peer;      /* the other leg's fd, or -1 */
  int relaying;  /* 0 while reading the CONNECT head (client side only) */
  int head_len;
  char *head;
};

static struct side sides[MAX_FD];
static int ep;

static void watch(int fd) {
  struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static void tune(int fd) {
  int one = 1;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void drop(int fd) {
  int p = sides[fd].peer;
  free(sides[fd].head);
  memset(&sides[fd], 0, sizeof sides[fd]);
  sides[fd].peer = -1;
  close(fd); /* close() also takes it out of the epoll set */
  if (p >= 0) {
    free(sides[p].head);
    memset(&sides[p], 0, sizeof sides[p]);
    sides[p].peer = -1;
    close(p);
  }
}

/* Writes all of buf, waiting for the socket to drain when its buffer is full. */
static int write_all(int fd, const char *buf, int len) {
  int off = 0;
  while (off < len) {
    ssize_t w = write(fd, buf + off, (size_t)(len - off));
    if (w > 0) {
      off += (int)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      poll(&p, 1, 1000);
    } else {
      return -1;
    }
  }
  return 0;
}

/* Reads the CONNECT head; once complete, connects to 127.0.0.1:PORT and answers 200. */
static void on_head(int fd) {
  struct side *s = &sides[fd];
  if (!s->head) s->head = calloc(1, HEAD_MAX + 1);
  ssize_t r = read(fd, s->head + s->head_len, (size_t)(HEAD_MAX - s->head_len));
  if (r < 0 && (errno == EAGAIN || errno == EBADF)) return;
  if (r <= 0) return drop(fd);
  s->head_len += (int)r;
  s->head[s->head_len] = 0;
  char *end = strstr(s->head, "\r\n\r\n");
  if (!end) {
    if (s->head_len >= HEAD_MAX) drop(fd);
    return;
  }
  char *sp = strchr(s->head, ' ');
  char *colon = sp ? strchr(sp + 1, ':') : NULL;
  int port = colon ? atoi(colon + 1) : 0;
  if (strncmp(s->head, "CONNECT ", 8) != 0 || port <= 0 || port > 65535) {
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    write_all(fd, bad, (int)sizeof bad - 1);
    return drop(fd);
  }
  int up = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (up < 0 || up >= MAX_FD || connect(up, (struct sockaddr *)&to, sizeof to) != 0) {
    if (up >= 0) close(up);
    static const char failed[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    write_all(fd, failed, (int)sizeof failed - 1);
    return drop(fd);
  }
  tune(up);
  /* Bytes the client sent after the head without waiting for the answer go upstream first. */
  int head_end = (int)(end - s->head) + 4;
  if (s->head_len > head_end && write_all(up, s->head + head_end, s->head_len - head_end) != 0) {
    close(up);
    return drop(fd);
  }
  free(s->head);
  s->head = NULL;
  s->relaying = 1;
  s->peer = up;
  sides[up].peer = fd;
  sides[up].relaying = 1;
  watch(up);
  static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  if (write_all(fd, ok, (int)sizeof ok - 1) != 0) drop(fd);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: hop PORT\n");
    return 2;
  }
  for (int i = 0; i < MAX_FD; i++) sides[i].peer = -1;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &at.sin_addr);
  if (bind(ls, (struct sockaddr *)&at, sizeof at) != 0 || listen(ls, 4096) != 0) {
    perror("hop: listen");
    return 1;
  }
  fcntl(ls, F_SETFL, O_NONBLOCK);
  ep = epoll_create1(0);
  watch(ls);
  static char buf[65536];
  struct epoll_event ev[256];
  for (;;) {
    int n = epoll_wait(ep, ev, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; i++) {
      int fd = ev[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept(ls, NULL, NULL)) >= 0) {
          if (c >= MAX_FD) {
            close(c);
            continue;
          }
          tune(c);
          watch(c);
        }
        continue;
      }
      if (!sides[fd].relaying) {
        on_head(fd);
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      /* EBADF: closed earlier in this batch, with its peer. */
      if (r < 0 && (errno == EAGAIN || errno == EBADF)) continue;
      if (r <= 0 || write_all(sides[fd].peer, buf, (int)r) != 0) drop(fd);
    }
  }
}
