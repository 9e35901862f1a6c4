/*
 * pier_tls: the proxy's native front door.
 *
 * C owns each client connection from accept to close: it reads the
 * SSLRequest, runs the TLS handshake, frames the startup packet and the
 * password message, and after authentication moves bytes between client and
 * backend. JavaScript makes every decision, through one event callback:
 * which certificate (by SNI name and dialled address), whether the startup
 * packet is acceptable, whether the password opens the instance, which
 * backend to splice to, and what to tell a client that is refused. There is
 * no JavaScript per message after authentication, and none per read before
 * it: a connection costs a handful of callbacks.
 *
 * When a client leaves with an idle-time Terminate, the backend is reset here
 * (DISCARD ALL, then a SELECT of a random nonce that must come back) and
 * JavaScript learns whether it may be kept warm.
 *
 * Everything runs on Node's event loop (uv_poll, uv_timer). OpenSSL is the
 * copy inside Node (its symbols are exported to addons), so nothing is linked.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define CHUNK 65536
#define SSL_REQUEST_CODE 80877103
#define GSSENC_REQUEST_CODE 80877104
#define MAX_RESET_MESSAGE (16 << 20)
#define MAX_RESET_BYTES (64 << 20)

/* Events delivered to JavaScript: onEvent(conn, state, type, a, b, c). */
enum {
  EV_HELLO = 1,    /* a: servername ('' if none) */
  EV_PLAIN = 2,    /* a: the first plaintext packet that is not SSLRequest or GSSENCRequest */
  EV_STARTUP = 3,  /* a: startup packet inside TLS, b: ALPN ('' if none), c: direct TLS */
  EV_PASSWORD = 4, /* a: message type, b: message body */
  EV_TIMEOUT = 5,  /* the pre-authentication time is up */
  EV_BAD_PACKET = 6, /* a: 'PROTOCOL_VIOLATION' | 'PACKET_TOO_LARGE' | 'DATA_BEFORE_TLS', b: message */
  EV_CLOSED = 7,   /* before a splice, the client went away. a: reason */
  EV_SPLICE_END = 8, /* a: backend reusable, b: ParameterStatus messages seen while resetting, c: reason */
};

typedef struct {
  char *data;
  size_t len, cap;
} buffer_t;

typedef enum {
  C_PLAIN,      /* before TLS: SSLRequest, GSSENCRequest or a direct-TLS ClientHello */
  C_HANDSHAKE,  /* TLS handshake under way */
  C_HELLO_WAIT, /* handshake paused: JavaScript is choosing the certificate */
  C_STARTUP,    /* reading the startup packet inside TLS */
  C_PASSWORD,   /* reading the password message */
  C_WAIT_JS,    /* JavaScript is deciding; input is buffered (bounded) */
  C_SPLICE,     /* client and backend joined */
  C_RESET,      /* client gone; resetting the backend */
  C_CLOSING,    /* last words sent; waiting for the client to close (bounded) */
  C_CLOSED,
} conn_state;

typedef struct front front_t;

typedef struct conn {
  front_t *f;
  conn_state state;
  int refs; /* the JavaScript external + the open uv handles */
  int cfd, bfd;
  uv_poll_t cpoll, bpoll;
  uv_timer_t timer;
  int cevents, bevents; /* what each poll watches now: changing it costs a system call */
  int cpoll_open, bpoll_open, timer_open;
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  int tls_open;     /* handshake done: bytes to the client are encrypted */
  int direct, gss_declined, context_chosen, hello_reported;
  char servername[256];
  char remote[INET6_ADDRSTRLEN], local[INET6_ADDRSTRLEN];
  buffer_t in;        /* plaintext read from the client (before TLS: raw) not yet framed */
  buffer_t to_client; /* bytes for the client the socket would not take yet */
  buffer_t to_backend;
  napi_ref self;  /* the conn external, while events may still be sent */
  napi_ref state_ref; /* JavaScript's object for this connection */
  /* splice */
  int backend_idle, held_terminate, want_reset;
  /* reset */
  char nonce[40];
  int labels[6], nlabels;
  size_t reset_budget;
  buffer_t params;
  int final_sent, tls_started;
  struct conn *prev, *next; /* the front's list of live connections */
} conn_t;

struct front {
  napi_env env;
  napi_ref on_event;
  napi_async_context async_context;
  SSL_CTX *default_ctx; /* owned by its JavaScript external; JavaScript keeps it alive */
  uint32_t max_startup, max_password, preauth_ms, reset_ms;
  conn_t *conns;
  size_t count;
};

typedef struct {
  front_t *f;
  int fd;
  uv_poll_t poll;
  uv_timer_t backoff; /* out of descriptors: accepting pauses briefly instead of spinning */
  int handles_open, finalized, closing;
  napi_ref front_ref;
} listener_t;

static const unsigned char TERMINATE[5] = {'X', 0, 0, 0, 4};

/* ---------- helpers ---------- */

static int buffer_append(buffer_t *b, const char *data, size_t len) {
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len) cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) return -1;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
  return 0;
}

static void buffer_consume(buffer_t *b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

static void buffer_free(buffer_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static uint32_t be32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}

static napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* The external behind a call's only argument, or NULL with an exception pending. */
static void *external_arg(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) throw_error(env, usage);
  return data;
}

static napi_value undefined_value(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

static void openssl_error_text(char *out, size_t size, const char *prefix) {
  unsigned long code = ERR_get_error();
  char detail[200] = "";
  if (code) ERR_error_string_n(code, detail, sizeof detail);
  ERR_clear_error();
  snprintf(out, size, "%s%s%s", prefix, detail[0] ? ": " : "", detail);
}

static void format_address(const struct sockaddr_storage *sa, char *out, size_t size) {
  out[0] = 0;
  if (sa->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
  } else if (sa->ss_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)size);
    else inet_ntop(AF_INET6, a, out, (socklen_t)size);
  }
}

/* ---------- TLS contexts ---------- */

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  static const unsigned char pg[] = "postgresql";
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == sizeof pg - 1 && memcmp(in + i + 1, pg, len) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)len;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

/* The server_name extension, read from the ClientHello: list length, type 0, name length, name. */
static void read_servername(SSL *ssl, char *out, size_t size) {
  const unsigned char *ext;
  size_t len;
  out[0] = 0;
  if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) || len < 5) return;
  size_t list = ((size_t)ext[0] << 8) | ext[1];
  if (list + 2 > len || ext[2] != TLSEXT_NAMETYPE_host_name) return;
  size_t name = ((size_t)ext[3] << 8) | ext[4];
  if (name + 5 > len || name == 0 || name >= size) return;
  if (memchr(ext + 5, 0, name)) return;
  memcpy(out, ext + 5, name);
  out[name] = 0;
}

/* Pauses the handshake once so JavaScript can choose the certificate (SNI name, dialled address). */
static int on_client_hello(SSL *ssl, int *alert, void *arg) {
  (void)alert;
  (void)arg;
  conn_t *c = SSL_get_app_data(ssl);
  if (c->context_chosen) return SSL_CLIENT_HELLO_SUCCESS;
  read_servername(ssl, c->servername, sizeof c->servername);
  return SSL_CLIENT_HELLO_RETRY;
}

static void context_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  SSL_CTX_free((SSL_CTX *)data);
}

static int load_pem(SSL_CTX *ctx, const char *cert, size_t cert_len, const char *key, size_t key_len) {
  BIO *bio = BIO_new_mem_buf(cert, (int)cert_len);
  X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  int ok = leaf && SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {
    X509 *chain = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!chain) break;
    if (SSL_CTX_add0_chain_cert(ctx, chain) != 1) {
      X509_free(chain);
      ok = 0;
    }
  }
  ERR_clear_error(); /* the end of the PEM list */
  BIO_free(bio);
  if (!ok) return 0;
  bio = BIO_new_mem_buf(key, (int)key_len);
  EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  ok = pkey && SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(pkey);
  return ok;
}

/* context(certPem: Buffer, keyPem: Buffer, ciphers: string, ciphersuites: string, groups: string) */
static napi_value context_new(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return throw_error(env, "context(cert, key, ciphers, ciphersuites, groups)");
  char *cert, *key;
  size_t cert_len, key_len;
  char ciphers[1024], suites[512], groups[256];
  size_t ignored;
  if (napi_get_buffer_info(env, argv[0], (void **)&cert, &cert_len) != napi_ok ||
      napi_get_buffer_info(env, argv[1], (void **)&key, &key_len) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], ciphers, sizeof ciphers, &ignored) != napi_ok ||
      napi_get_value_string_utf8(env, argv[3], suites, sizeof suites, &ignored) != napi_ok ||
      napi_get_value_string_utf8(env, argv[4], groups, sizeof groups, &ignored) != napi_ok)
    return throw_error(env, "context: expected two Buffers and three strings");
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return throw_error(env, "context: SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* No session tickets or cache: libpq never resumes, so every client does a full handshake anyway. */
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  char message[300];
  if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1 || SSL_CTX_set_ciphersuites(ctx, suites) != 1 ||
      SSL_CTX_set1_groups_list(ctx, groups) != 1 || !load_pem(ctx, cert, cert_len, key, key_len)) {
    openssl_error_text(message, sizeof message, "context: invalid TLS settings or certificate");
    SSL_CTX_free(ctx);
    return throw_error(env, message);
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
  SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
  napi_value result;
  napi_create_external(env, ctx, context_finalize, NULL, &result);
  return result;
}

/* ---------- calling JavaScript ---------- */

static void emit(conn_t *c, int type, napi_value a, napi_value b, napi_value cc);

static napi_value js_string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value js_bool(napi_env env, int value) {
  napi_value v;
  napi_get_boolean(env, value, &v);
  return v;
}

static napi_value js_copy(napi_env env, const char *data, size_t len) {
  napi_value v;
  void *ignored;
  napi_create_buffer_copy(env, len, data, &ignored, &v);
  return v;
}

/* ---------- connection lifetime ---------- */

static void conn_unref(conn_t *c) {
  if (--c->refs > 0) return;
  if (c->ssl) SSL_free(c->ssl);
  buffer_free(&c->in);
  buffer_free(&c->to_client);
  buffer_free(&c->to_backend);
  buffer_free(&c->params);
  free(c);
}

static void on_handle_closed(uv_handle_t *handle) {
  conn_t *c = handle->data;
  conn_unref(c);
}

/* Stops watching one side and closes its descriptor (the handle's memory lives until its close callback). */
static void close_side(uv_poll_t *poll, int *poll_open, int *fd) {
  if (*poll_open) {
    *poll_open = 0;
    uv_close((uv_handle_t *)poll, on_handle_closed);
  }
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

static void close_client_side(conn_t *c) { close_side(&c->cpoll, &c->cpoll_open, &c->cfd); }
static void close_backend_side(conn_t *c) { close_side(&c->bpoll, &c->bpoll_open, &c->bfd); }

static void close_timer(conn_t *c) {
  if (c->timer_open) {
    c->timer_open = 0;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  }
}

static void release_js(conn_t *c) {
  napi_env env = c->f->env;
  if (c->state_ref) napi_delete_reference(env, c->state_ref);
  if (c->self) napi_delete_reference(env, c->self);
  c->state_ref = NULL;
  c->self = NULL;
}

/* Closes everything now. `final_event` (EV_CLOSED or EV_SPLICE_END) tells JavaScript, if it is to be told. */
static void conn_close(conn_t *c, int final_event, int reusable, const char *reason) {
  if (c->state == C_CLOSED) return;
  c->state = C_CLOSED;
  front_t *f = c->f;
  if (c->prev) c->prev->next = c->next;
  else f->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  f->count--;
  close_client_side(c);
  close_backend_side(c);
  close_timer(c);
  /* JavaScript hears of the end only of connections it has seen. */
  if (final_event && !c->final_sent && c->state_ref) {
    c->final_sent = 1;
    napi_env env = c->f->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    if (final_event == EV_SPLICE_END) {
      napi_value params = c->params.len ? js_copy(env, c->params.data, c->params.len) : undefined_value(env);
      emit(c, EV_SPLICE_END, js_bool(env, reusable), params, js_string(env, reason));
    } else {
      emit(c, EV_CLOSED, js_string(env, reason), NULL, NULL);
    }
    napi_close_handle_scope(env, scope);
  }
  release_js(c);
}

static void emit(conn_t *c, int type, napi_value a, napi_value b, napi_value cc) {
  front_t *f = c->f;
  napi_env env = f->env;
  napi_value callback, global, argv[6], result;
  if (napi_get_reference_value(env, f->on_event, &callback) != napi_ok || !callback) return;
  napi_get_global(env, &global);
  argv[0] = undefined_value(env);
  if (c->self) napi_get_reference_value(env, c->self, &argv[0]);
  /* The first event creates JavaScript's object for the connection, before any nested event can need it. */
  if (!c->state_ref) {
    napi_create_object(env, &argv[1]);
    napi_create_reference(env, argv[1], 1, &c->state_ref);
  } else {
    napi_get_reference_value(env, c->state_ref, &argv[1]);
  }
  napi_create_int32(env, type, &argv[2]);
  argv[3] = a ? a : undefined_value(env);
  argv[4] = b ? b : undefined_value(env);
  argv[5] = cc ? cc : undefined_value(env);
  c->refs++; /* JavaScript may end the connection while we are still inside this call */
  napi_make_callback(env, f->async_context, global, callback, 6, argv, &result);
  conn_unref(c);
}

/* ---------- writing ---------- */

/* Writes as much as the socket takes; the rest waits in `pending`. Returns -1 when the socket is broken. */
static int write_or_queue(int fd, buffer_t *pending, const char *data, size_t len) {
  if (pending->len == 0) {
    while (len > 0) {
      ssize_t n = write(fd, data, len);
      if (n > 0) {
        data += n;
        len -= (size_t)n;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        return -1;
      }
    }
  }
  return len > 0 ? buffer_append(pending, data, len) : 0;
}

static int flush_pending(int fd, buffer_t *pending) {
  while (pending->len > 0) {
    ssize_t n = write(fd, pending->data, pending->len);
    if (n > 0) buffer_consume(pending, (size_t)n);
    else if (n < 0 && errno == EINTR) continue;
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    else return -1;
  }
  return 0;
}

/* Moves the TLS engine's output to the client socket. */
static int send_encrypted(conn_t *c) {
  char chunk[16384];
  for (;;) {
    int n = BIO_read(c->wbio, chunk, sizeof chunk);
    if (n <= 0) return 0;
    if (write_or_queue(c->cfd, &c->to_client, chunk, (size_t)n) != 0) return -1;
  }
}

/* Sends plaintext to the client: encrypted once TLS is up, as is before. */
static int send_to_client(conn_t *c, const char *data, size_t len) {
  if (len == 0) return 0;
  if (!c->tls_open) return write_or_queue(c->cfd, &c->to_client, data, len);
  if (SSL_write(c->ssl, data, (int)len) != (int)len) {
    ERR_clear_error();
    return -1;
  }
  return send_encrypted(c);
}

/* ---------- polling ---------- */

static void on_client_event(uv_poll_t *handle, int status, int events);
static void on_backend_event(uv_poll_t *handle, int status, int events);

static void watch_client(conn_t *c, int events) {
  if (!c->cpoll_open || events == c->cevents) return;
  if (events) uv_poll_start(&c->cpoll, events, on_client_event);
  else uv_poll_stop(&c->cpoll);
  c->cevents = events;
}

static void watch_backend(conn_t *c, int events) {
  if (!c->bpoll_open || events == c->bevents) return;
  if (events) uv_poll_start(&c->bpoll, events, on_backend_event);
  else uv_poll_stop(&c->bpoll);
  c->bevents = events;
}

/* What to watch, from the state and what is waiting to be written. */
static void update_polls(conn_t *c) {
  int cw = c->to_client.len ? UV_WRITABLE : 0;
  switch (c->state) {
  case C_SPLICE:
    /* Read a side only while the other side has taken everything so far. */
    watch_client(c, (c->to_backend.len == 0 ? UV_READABLE : 0) | cw);
    watch_backend(c, (c->to_client.len == 0 ? UV_READABLE : 0) | (c->to_backend.len ? UV_WRITABLE : 0));
    break;
  case C_RESET:
    watch_backend(c, UV_READABLE | (c->to_backend.len ? UV_WRITABLE : 0));
    break;
  case C_HELLO_WAIT:
    watch_client(c, cw);
    break;
  case C_CLOSED:
    break;
  default:
    watch_client(c, UV_READABLE | cw);
  }
}

/* ---------- before the splice ---------- */

static void bad_packet(conn_t *c, const char *kind, const char *message) {
  c->state = C_WAIT_JS;
  napi_env env = c->f->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  emit(c, EV_BAD_PACKET, js_string(env, kind), js_string(env, message), NULL);
  napi_close_handle_scope(env, scope);
}

static void do_handshake(conn_t *c);
static void advance(conn_t *c);
static int decrypt_available(conn_t *c);

/* Before TLS: SSLRequest, GSSENCRequest, a direct-TLS ClientHello, or something JavaScript must answer. */
static void advance_plain(conn_t *c) {
  while (c->state == C_PLAIN && c->in.len > 0) {
    if ((unsigned char)c->in.data[0] == 0x16) {
      /* Direct TLS (sslnegotiation=direct): the bytes are the ClientHello. */
      c->direct = 1;
      c->tls_started = 1;
      c->state = C_HANDSHAKE;
      BIO_write(c->rbio, c->in.data, (int)c->in.len);
      c->in.len = 0;
      do_handshake(c);
      return;
    }
    if (c->in.len < 4) return;
    uint32_t len = be32(c->in.data);
    char message[160];
    if (len < 8) {
      snprintf(message, sizeof message, "invalid startup packet length %d", (int)len);
      return bad_packet(c, "PROTOCOL_VIOLATION", message);
    }
    if (len > c->f->max_startup) {
      snprintf(message, sizeof message, "startup packet of %u bytes exceeds %u", len, c->f->max_startup);
      return bad_packet(c, "PACKET_TOO_LARGE", message);
    }
    if (c->in.len < len) return;
    uint32_t code = be32(c->in.data + 4);
    if (code == SSL_REQUEST_CODE && len == 8) {
      if (c->in.len > 8) {
        /* Bytes sent before our answer would be read as TLS by nobody: refuse them (CVE-2021-23214). */
        return bad_packet(c, "DATA_BEFORE_TLS",
                          "Data was sent before the server answered the SSLRequest.");
      }
      c->in.len = 0;
      c->state = C_HANDSHAKE;
      c->tls_started = 1;
      if (write_or_queue(c->cfd, &c->to_client, "S", 1) != 0) return conn_close(c, EV_CLOSED, 0, "write failed");
      return;
    }
    if (code == GSSENC_REQUEST_CODE && len == 8 && !c->gss_declined) {
      c->gss_declined = 1;
      buffer_consume(&c->in, 8);
      if (write_or_queue(c->cfd, &c->to_client, "N", 1) != 0) return conn_close(c, EV_CLOSED, 0, "write failed");
      continue;
    }
    /* A plaintext startup, a CancelRequest or something else: JavaScript answers. */
    c->state = C_WAIT_JS;
    napi_env env = c->f->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value packet = js_copy(env, c->in.data, len);
    buffer_consume(&c->in, len);
    emit(c, EV_PLAIN, packet, NULL, NULL);
    napi_close_handle_scope(env, scope);
    return;
  }
}

static void do_handshake(conn_t *c) {
  int r = SSL_do_handshake(c->ssl);
  if (send_encrypted(c) != 0) return conn_close(c, EV_CLOSED, 0, "write failed");
  if (r == 1) {
    c->tls_open = 1;
    c->state = C_STARTUP;
    /* The client may have sent its startup packet right behind its Finished. */
    if (decrypt_available(c) == 0) advance(c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
    c->state = C_HELLO_WAIT;
    if (c->hello_reported) return;
    c->hello_reported = 1;
    napi_env env = c->f->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    emit(c, EV_HELLO, js_string(env, c->servername), NULL, NULL);
    napi_close_handle_scope(env, scope);
    return;
  }
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
  char message[300];
  openssl_error_text(message, sizeof message, "TLS handshake failed");
  conn_close(c, EV_CLOSED, 0, message);
}

/* Decrypts what the engine holds into `in`. Returns -1 (and closes) when the client is gone or broke TLS. */
static int decrypt_available(conn_t *c) {
  char plain[16384];
  for (;;) {
    int n = SSL_read(c->ssl, plain, sizeof plain);
    if (n > 0) {
      if (buffer_append(&c->in, plain, (size_t)n) != 0) {
        conn_close(c, EV_CLOSED, 0, "out of memory");
        return -1;
      }
      continue;
    }
    int e = SSL_get_error(c->ssl, n);
    /* After close_notify, what came before it still counts (a CancelRequest, then goodbye). */
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_ZERO_RETURN) return 0;
    ERR_clear_error();
    conn_close(c, EV_CLOSED, 0, "client TLS error");
    return -1;
  }
}

/* Frames what has been decrypted: the startup packet, then the password message. */
static void advance(conn_t *c) {
  napi_env env = c->f->env;
  char message[160];
  if (c->state == C_STARTUP && c->in.len >= 4) {
    uint32_t len = be32(c->in.data);
    if (len < 8) {
      snprintf(message, sizeof message, "invalid startup packet length %d", (int)len);
      return bad_packet(c, "PROTOCOL_VIOLATION", message);
    }
    if (len > c->f->max_startup) {
      snprintf(message, sizeof message, "startup packet of %u bytes exceeds %u", len, c->f->max_startup);
      return bad_packet(c, "PACKET_TOO_LARGE", message);
    }
    if (c->in.len < len) return;
    c->state = C_WAIT_JS;
    const unsigned char *alpn;
    unsigned int alpn_len;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    char alpn_text[64] = "";
    if (alpn_len > 0 && alpn_len < sizeof alpn_text) {
      memcpy(alpn_text, alpn, alpn_len);
      alpn_text[alpn_len] = 0;
    }
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value packet = js_copy(env, c->in.data, len);
    buffer_consume(&c->in, len);
    emit(c, EV_STARTUP, packet, js_string(env, alpn_text), js_bool(env, c->direct));
    napi_close_handle_scope(env, scope);
    return;
  }
  if (c->state == C_PASSWORD && c->in.len >= 5) {
    int type = (unsigned char)c->in.data[0];
    uint32_t len = be32(c->in.data + 1);
    if (len < 4) {
      snprintf(message, sizeof message, "invalid message length %d", (int)len);
      return bad_packet(c, "PROTOCOL_VIOLATION", message);
    }
    if (len > c->f->max_password) {
      snprintf(message, sizeof message, "message of %u bytes exceeds %u", len, c->f->max_password);
      return bad_packet(c, "PACKET_TOO_LARGE", message);
    }
    if (c->in.len < 1 + (size_t)len) return;
    c->state = C_WAIT_JS;
    uv_timer_stop(&c->timer); /* the client has said all it must; the rest is ours to decide */
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value t, body = js_copy(env, c->in.data + 5, len - 4);
    napi_create_int32(env, type, &t);
    buffer_consume(&c->in, 1 + (size_t)len);
    emit(c, EV_PASSWORD, t, body, NULL);
    napi_close_handle_scope(env, scope);
    return;
  }
  /* While JavaScript decides, a client may send ahead (a query after the password): bounded. */
  if (c->in.len > (size_t)c->f->max_startup + c->f->max_password + CHUNK) {
    bad_packet(c, "PACKET_TOO_LARGE", "too much data before authentication finished");
  }
}

static void splice_client_readable(conn_t *c);
static void client_gone(conn_t *c, const char *reason);

static void on_client_event(uv_poll_t *handle, int status, int events) {
  conn_t *c = handle->data;
  if (c->state == C_CLOSED) return;
  if (status < 0) {
    if (c->state == C_SPLICE) return client_gone(c, "client socket error");
    return conn_close(c, c->state == C_CLOSING ? 0 : EV_CLOSED, 0, "client socket error");
  }
  if (events & UV_WRITABLE) {
    if (flush_pending(c->cfd, &c->to_client) != 0) {
      if (c->state == C_SPLICE) return client_gone(c, "client write failed");
      return conn_close(c, c->state == C_CLOSING ? 0 : EV_CLOSED, 0, "client write failed");
    }
    if (c->state == C_CLOSING && c->to_client.len == 0) shutdown(c->cfd, SHUT_WR);
  }
  if (events & UV_READABLE) {
    if (c->state == C_SPLICE) {
      if (c->to_backend.len == 0) splice_client_readable(c);
    } else {
      char raw[16384];
      ssize_t n = read(c->cfd, raw, sizeof raw);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        return conn_close(c, c->state == C_CLOSING ? 0 : EV_CLOSED, 0, n == 0 ? "client closed" : "client read failed");
      }
      if (n > 0 && c->state != C_CLOSING) {
        if (!c->tls_started) {
          if (buffer_append(&c->in, raw, (size_t)n) != 0) return conn_close(c, EV_CLOSED, 0, "out of memory");
          if (c->in.len > (size_t)c->f->max_startup + CHUNK) {
            c->in.len = 0;
            if (c->state == C_PLAIN) return bad_packet(c, "PACKET_TOO_LARGE", "too much data before TLS");
          }
          advance_plain(c);
        } else {
          if (BIO_write(c->rbio, raw, (int)n) != (int)n) return conn_close(c, EV_CLOSED, 0, "out of memory");
          if (c->state == C_HANDSHAKE) {
            do_handshake(c);
          } else if (c->state != C_HELLO_WAIT) {
            if (decrypt_available(c) == 0) advance(c);
          }
        }
      }
    }
  }
  if (c->state != C_CLOSED) update_polls(c);
}

static void on_timer(uv_timer_t *timer) {
  conn_t *c = timer->data;
  if (c->state == C_CLOSING) return conn_close(c, 0, 0, "closed");
  if (c->state == C_RESET) return conn_close(c, EV_SPLICE_END, 0, "reset timed out");
  if (c->state == C_CLOSED || c->state == C_SPLICE) return;
  if (c->state == C_HANDSHAKE || c->state == C_HELLO_WAIT) return conn_close(c, EV_CLOSED, 0, "TLS handshake timed out");
  napi_env env = c->f->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  emit(c, EV_TIMEOUT, NULL, NULL, NULL);
  napi_close_handle_scope(env, scope);
}

/* ---------- the splice ---------- */

static int send_to_backend(conn_t *c, const char *data, size_t len) {
  if (c->backend_idle && len == sizeof TERMINATE && memcmp(data, TERMINATE, len) == 0) {
    c->held_terminate = 1; /* sent later only if the client goes on talking */
    return 0;
  }
  if (c->held_terminate) {
    c->held_terminate = 0;
    if (write_or_queue(c->bfd, &c->to_backend, (const char *)TERMINATE, sizeof TERMINATE) != 0) return -1;
  }
  c->backend_idle = 0;
  return write_or_queue(c->bfd, &c->to_backend, data, len);
}

static void start_reset(conn_t *c);

/* The client is gone: the backend may be reused only after an idle-time Terminate and nothing else. */
static void client_gone(conn_t *c, const char *reason) {
  if (c->held_terminate && c->to_backend.len == 0 && c->backend_idle && c->want_reset) return start_reset(c);
  conn_close(c, EV_SPLICE_END, 0, reason);
}

static void splice_client_readable(conn_t *c) {
  char raw[CHUNK];
  ssize_t n = read(c->cfd, raw, sizeof raw);
  if (n == 0) return client_gone(c, "client closed");
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) client_gone(c, "client read failed");
    return;
  }
  if (BIO_write(c->rbio, raw, (int)n) != (int)n) return conn_close(c, EV_SPLICE_END, 0, "out of memory");
  char plain[CHUNK];
  for (;;) {
    int k = SSL_read(c->ssl, plain, sizeof plain);
    if (k > 0) {
      if (send_to_backend(c, plain, (size_t)k) != 0) return conn_close(c, EV_SPLICE_END, 0, "backend write failed");
      continue;
    }
    int e = SSL_get_error(c->ssl, k);
    if (e == SSL_ERROR_ZERO_RETURN) return client_gone(c, "client closed");
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      ERR_clear_error();
      return client_gone(c, "client TLS error");
    }
    break;
  }
  /* A TLS 1.3 KeyUpdate may need an answer. */
  if (send_encrypted(c) != 0) client_gone(c, "client write failed");
}

static int ends_with_ready_for_query_idle(const char *data, size_t n) {
  return n >= 6 && data[n - 1] == 'I' && data[n - 2] == 5 && data[n - 3] == 0 && data[n - 4] == 0 &&
         data[n - 5] == 0 && data[n - 6] == 'Z';
}

static void reset_readable(conn_t *c);

static void on_backend_event(uv_poll_t *handle, int status, int events) {
  conn_t *c = handle->data;
  if (c->state != C_SPLICE && c->state != C_RESET) return;
  if (status < 0) return conn_close(c, EV_SPLICE_END, 0, "backend socket error");
  if (events & UV_WRITABLE) {
    if (flush_pending(c->bfd, &c->to_backend) != 0) return conn_close(c, EV_SPLICE_END, 0, "backend write failed");
  }
  if (events & UV_READABLE) {
    if (c->state == C_RESET) {
      reset_readable(c);
    } else if (c->to_client.len == 0) {
      char plain[CHUNK];
      ssize_t n = read(c->bfd, plain, sizeof plain);
      if (n == 0) return conn_close(c, EV_SPLICE_END, 0, "backend closed");
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
          return conn_close(c, EV_SPLICE_END, 0, "backend read failed");
      } else {
        c->backend_idle = ends_with_ready_for_query_idle(plain, (size_t)n);
        if (send_to_client(c, plain, (size_t)n) != 0) return client_gone(c, "client write failed");
      }
    }
  }
  if (c->state == C_SPLICE || c->state == C_RESET) update_polls(c);
}

/* ---------- resetting a backend for the next client ---------- */

enum { L_OTHER, L_DISCARD, L_IDLE, L_ROWDESC, L_NONCE, L_SELECT1 };
static const int CLEAN_ENDING[6] = {L_DISCARD, L_IDLE, L_ROWDESC, L_NONCE, L_SELECT1, L_IDLE};

static void query_message(buffer_t *out, const char *sql) {
  size_t len = strlen(sql) + 1;
  char head[5] = {'Q'};
  uint32_t total = (uint32_t)len + 4;
  head[1] = (char)(total >> 24);
  head[2] = (char)(total >> 16);
  head[3] = (char)(total >> 8);
  head[4] = (char)total;
  buffer_append(out, head, 5);
  buffer_append(out, sql, len);
}

/*
 * The client left cleanly. Reset the session with DISCARD ALL, then prove it
 * is clean: a SELECT of a random nonce must come back, ending in
 * ReadyForQuery 'I', with nothing after. Anything else and it is not reused.
 */
static void start_reset(conn_t *c) {
  close_client_side(c);
  if (c->ssl) {
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  c->state = C_RESET;
  c->in.len = 0;
  c->nlabels = 0;
  c->reset_budget = MAX_RESET_BYTES;
  unsigned char random[12];
  if (RAND_bytes(random, sizeof random) != 1) return conn_close(c, EV_SPLICE_END, 0, "no randomness");
  strcpy(c->nonce, "pier-reset-");
  for (size_t i = 0; i < sizeof random; i++) sprintf(c->nonce + 11 + 2 * i, "%02x", random[i]);
  char select[64];
  snprintf(select, sizeof select, "SELECT '%s'", c->nonce);
  buffer_t queries = {0};
  query_message(&queries, "DISCARD ALL");
  query_message(&queries, select);
  int failed = !queries.data || write_or_queue(c->bfd, &c->to_backend, queries.data, queries.len) != 0;
  buffer_free(&queries);
  if (failed) return conn_close(c, EV_SPLICE_END, 0, "backend write failed");
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_timer, c->f->reset_ms, 0);
  update_polls(c);
}

static int reset_label(conn_t *c, int type, const char *body, size_t len) {
  if (type == 'C' && len == 12 && memcmp(body, "DISCARD ALL", 12) == 0) return L_DISCARD;
  if (type == 'C' && len == 9 && memcmp(body, "SELECT 1", 9) == 0) return L_SELECT1;
  if (type == 'Z' && len == 1 && body[0] == 'I') return L_IDLE;
  if (type == 'T') return L_ROWDESC;
  if (type == 'D') {
    size_t n = strlen(c->nonce);
    for (size_t i = 0; i + n <= len; i++)
      if (memcmp(body + i, c->nonce, n) == 0) return L_NONCE;
  }
  return L_OTHER;
}

static void reset_readable(conn_t *c) {
  char raw[CHUNK];
  ssize_t n = read(c->bfd, raw, sizeof raw);
  if (n == 0) return conn_close(c, EV_SPLICE_END, 0, "backend closed during reset");
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      conn_close(c, EV_SPLICE_END, 0, "backend read failed during reset");
    return;
  }
  if ((size_t)n > c->reset_budget) return conn_close(c, EV_SPLICE_END, 0, "too much output during reset");
  c->reset_budget -= (size_t)n;
  if (buffer_append(&c->in, raw, (size_t)n) != 0) return conn_close(c, EV_SPLICE_END, 0, "out of memory");
  size_t at = 0;
  while (c->in.len - at >= 5) {
    int type = (unsigned char)c->in.data[at];
    uint32_t len = be32(c->in.data + at + 1);
    if (len < 4 || len > MAX_RESET_MESSAGE) return conn_close(c, EV_SPLICE_END, 0, "bad message during reset");
    if (c->in.len - at < 1 + (size_t)len) break;
    const char *body = c->in.data + at + 5;
    size_t body_len = len - 4;
    at += 1 + (size_t)len;
    if (type == 'S') {
      /* A parameter the reset changed back: the next client is told the current value. */
      if (buffer_append(&c->params, c->in.data + at - 1 - len, 1 + (size_t)len) != 0)
        return conn_close(c, EV_SPLICE_END, 0, "out of memory");
      continue;
    }
    int label = reset_label(c, type, body, body_len);
    if (c->nlabels == 6) {
      memmove(c->labels, c->labels + 1, 5 * sizeof c->labels[0]);
      c->nlabels = 5;
    }
    c->labels[c->nlabels++] = label;
    if (label == L_IDLE && c->nlabels == 6 && memcmp(c->labels, CLEAN_ENDING, sizeof CLEAN_ENDING) == 0) {
      int clean = at == c->in.len;
      return conn_close(c, EV_SPLICE_END, clean, clean ? "reset" : "data after reset");
    }
  }
  buffer_consume(&c->in, at);
}

/* ---------- the front and its listeners ---------- */

static void front_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  front_t *f = data;
  napi_delete_reference(env, f->on_event);
  napi_async_destroy(env, f->async_context);
  free(f);
}

/*
 * front(onEvent, defaultContext, { maxStartup, maxPassword, preAuthMs, resetMs }) → front
 * One per proxy: the event handler and the limits every connection shares.
 */
static napi_value front_new(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], this_arg;
  napi_get_cb_info(env, info, &argc, argv, &this_arg, NULL);
  napi_valuetype t0;
  SSL_CTX *ctx = NULL;
  if (argc < 3 || napi_typeof(env, argv[0], &t0) != napi_ok || t0 != napi_function ||
      napi_get_value_external(env, argv[1], (void **)&ctx) != napi_ok || !ctx)
    return throw_error(env, "front(onEvent, defaultContext, limits)");
  front_t *f = calloc(1, sizeof *f);
  if (!f) return throw_error(env, "front: out of memory");
  f->env = env;
  f->default_ctx = ctx;
  const char *names[4] = {"maxStartup", "maxPassword", "preAuthMs", "resetMs"};
  uint32_t *fields[4] = {&f->max_startup, &f->max_password, &f->preauth_ms, &f->reset_ms};
  for (int i = 0; i < 4; i++) {
    napi_value v;
    if (napi_get_named_property(env, argv[2], names[i], &v) != napi_ok ||
        napi_get_value_uint32(env, v, fields[i]) != napi_ok) {
      free(f);
      return throw_error(env, "front: limits must be numbers (maxStartup, maxPassword, preAuthMs, resetMs)");
    }
  }
  napi_create_reference(env, argv[0], 1, &f->on_event);
  napi_value name;
  napi_create_string_utf8(env, "pier.proxy", NAPI_AUTO_LENGTH, &name);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_async_init(env, resource, name, &f->async_context);
  napi_value result;
  napi_create_external(env, f, front_finalize, NULL, &result);
  /* The default context must outlive the front: keep its external reachable from the front's. */
  return result;
}

static void conn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  conn_unref((conn_t *)data);
}

static void accept_one(listener_t *l, int fd, const struct sockaddr_storage *peer) {
  front_t *f = l->f;
  napi_env env = f->env;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return;
  }
  c->f = f;
  c->cfd = fd;
  c->bfd = -1;
  c->state = C_PLAIN;
  format_address(peer, c->remote, sizeof c->remote);
  struct sockaddr_storage sa;
  socklen_t sl = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) format_address(&sa, c->local, sizeof c->local);
  c->ssl = SSL_new(f->default_ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  if (!c->ssl || !c->rbio || !c->wbio || uv_poll_init(loop, &c->cpoll, fd) != 0) {
    if (c->ssl) SSL_free(c->ssl);
    else {
      BIO_free(c->rbio);
      BIO_free(c->wbio);
    }
    close(fd);
    free(c);
    return;
  }
  BIO_set_mem_eof_return(c->rbio, -1);
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_accept_state(c->ssl);
  SSL_set_app_data(c->ssl, c);
  uv_timer_init(loop, &c->timer);
  c->cpoll.data = c->timer.data = c->bpoll.data = c;
  c->cpoll_open = c->timer_open = 1;
  c->refs = 3; /* the external, cpoll, timer */
  c->next = f->conns;
  if (f->conns) f->conns->prev = c;
  f->conns = c;
  f->count++;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value external;
  napi_create_external(env, c, conn_finalize, NULL, &external);
  napi_create_reference(env, external, 1, &c->self);
  napi_close_handle_scope(env, scope);
  uv_timer_start(&c->timer, on_timer, f->preauth_ms, 0);
  update_polls(c);
}

static void on_listener_event(uv_poll_t *handle, int status, int events);

static void resume_accepting(uv_timer_t *timer) {
  listener_t *l = timer->data;
  if (!l->closing) uv_poll_start(&l->poll, UV_READABLE, on_listener_event);
}

static void on_listener_event(uv_poll_t *handle, int status, int events) {
  (void)events;
  listener_t *l = handle->data;
  if (status < 0 || l->closing) return;
  /* A bounded batch: other connections' events wait no longer than this. */
  for (int i = 0; i < 32; i++) {
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    int fd = accept4(l->fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        uv_poll_stop(&l->poll);
        uv_timer_start(&l->backoff, resume_accepting, 100, 0);
      }
      return;
    }
    accept_one(l, fd, &sa);
  }
}

static void listener_handle_closed(uv_handle_t *handle) {
  listener_t *l = handle->data;
  if (--l->handles_open == 0 && l->finalized) free(l);
}

static void listener_stop(listener_t *l) {
  if (l->closing) return;
  l->closing = 1;
  uv_close((uv_handle_t *)&l->poll, listener_handle_closed);
  uv_close((uv_handle_t *)&l->backoff, listener_handle_closed);
  close(l->fd);
  l->fd = -1;
}

static void listener_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  listener_t *l = data;
  napi_delete_reference(env, l->front_ref);
  l->finalized = 1;
  listener_stop(l);
  if (l->handles_open == 0) free(l);
}

/* listen(front, address, port) → { listener, port }. The address is a literal IPv4 or IPv6 address. */
static napi_value listen_new(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  front_t *f = NULL;
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_len;
  uint32_t port;
  if (argc < 3 || napi_get_value_external(env, argv[0], (void **)&f) != napi_ok || !f ||
      napi_get_value_string_utf8(env, argv[1], host, sizeof host, &host_len) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &port) != napi_ok || port > 65535)
    return throw_error(env, "listen(front, address, port)");
  struct sockaddr_storage sa;
  memset(&sa, 0, sizeof sa);
  socklen_t sl;
  if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&sa)->sin_addr) == 1) {
    sa.ss_family = AF_INET;
    ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);
    sl = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&sa)->sin6_addr) == 1) {
    sa.ss_family = AF_INET6;
    ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
    sl = sizeof(struct sockaddr_in6);
  } else {
    return throw_error(env, "listen: not an IP address");
  }
  int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_error(env, strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sl) != 0 || listen(fd, 511) != 0) {
    int e = errno;
    close(fd);
    char message[200];
    const char *code = e == EADDRINUSE ? "EADDRINUSE" : e == EACCES ? "EACCES" : e == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : "ELISTEN";
    snprintf(message, sizeof message, "listen %s: %s %s:%u", code, strerror(e), host, port);
    napi_throw_error(env, code, message);
    return NULL;
  }
  sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  uint16_t bound = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
                                                  : ((struct sockaddr_in6 *)&sa)->sin6_port);
  listener_t *l = calloc(1, sizeof *l);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  if (!l || uv_poll_init(loop, &l->poll, fd) != 0) {
    close(fd);
    free(l);
    return throw_error(env, "listen: cannot watch the socket");
  }
  uv_timer_init(loop, &l->backoff);
  l->f = f;
  l->fd = fd;
  l->poll.data = l->backoff.data = l;
  l->handles_open = 2;
  napi_create_reference(env, argv[0], 1, &l->front_ref);
  uv_poll_start(&l->poll, UV_READABLE, on_listener_event);
  napi_value result, external, port_value;
  napi_create_object(env, &result);
  napi_create_external(env, l, listener_finalize, NULL, &external);
  napi_create_uint32(env, bound, &port_value);
  napi_set_named_property(env, result, "listener", external);
  napi_set_named_property(env, result, "port", port_value);
  return result;
}

/* closeListener(listener): stops accepting; connections already accepted go on. */
static napi_value listen_close(napi_env env, napi_callback_info info) {
  listener_t *l = external_arg(env, info, "closeListener(listener)");
  if (!l) return NULL;
  listener_stop(l);
  return NULL;
}

/* stats(front) → number of open client connections */
static napi_value front_stats(napi_env env, napi_callback_info info) {
  front_t *f = external_arg(env, info, "stats(front)");
  if (!f) return NULL;
  napi_value v;
  napi_create_uint32(env, (uint32_t)f->count, &v);
  return v;
}

/* closeAll(front): ends every connection now (the proxy is closing). Splices still report their end. */
static napi_value front_close_all(napi_env env, napi_callback_info info) {
  front_t *f = external_arg(env, info, "closeAll(front)");
  if (!f) return NULL;
  while (f->conns) {
    conn_t *c = f->conns;
    int spliced = c->state == C_SPLICE || c->state == C_RESET;
    conn_close(c, spliced ? EV_SPLICE_END : EV_CLOSED, 0, "the proxy is closing");
  }
  return NULL;
}

/* ---------- what JavaScript asks of a connection ---------- */

static conn_t *conn_call(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_get_cb_info(env, info, argc, argv, NULL, NULL);
  conn_t *c = NULL;
  if (*argc < 1 || napi_get_value_external(env, argv[0], (void **)&c) != napi_ok || !c) {
    throw_error(env, "expected a connection as the first argument");
    return NULL;
  }
  return c;
}

static int get_buffer(napi_env env, napi_value value, char **data, size_t *len) {
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (!is_buffer) {
    *data = NULL;
    *len = 0;
    return 0;
  }
  return napi_get_buffer_info(env, value, (void **)data, len) == napi_ok ? 1 : 0;
}

/* addresses(conn) → [remote, local] */
static napi_value conn_addresses(napi_env env, napi_callback_info info) {
  conn_t *c = external_arg(env, info, "addresses(conn)");
  if (!c) return NULL;
  napi_value result;
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, js_string(env, c->remote));
  napi_set_element(env, result, 1, js_string(env, c->local));
  return result;
}

/* useContext(conn, context | undefined): answers EV_HELLO; the handshake goes on. */
static napi_value conn_use_context(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  conn_t *c = conn_call(env, info, &argc, argv);
  if (!c) return NULL;
  if (c->state != C_HELLO_WAIT) return js_bool(env, 0);
  SSL_CTX *ctx = NULL;
  if (argc >= 2) {
    napi_valuetype type;
    napi_typeof(env, argv[1], &type);
    if (type == napi_external) napi_get_value_external(env, argv[1], (void **)&ctx);
  }
  if (ctx) SSL_set_SSL_CTX(c->ssl, ctx);
  c->context_chosen = 1;
  c->state = C_HANDSHAKE;
  do_handshake(c);
  if (c->state != C_CLOSED) update_polls(c);
  return js_bool(env, 1);
}

/* askPassword(conn, prefix?: Buffer): sends prefix + AuthenticationCleartextPassword, reads the answer. */
static napi_value conn_ask_password(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  conn_t *c = conn_call(env, info, &argc, argv);
  if (!c) return NULL;
  if (c->state != C_WAIT_JS || !c->tls_open) return js_bool(env, 0);
  static const char ask[9] = {'R', 0, 0, 0, 8, 0, 0, 0, 3};
  char *prefix;
  size_t prefix_len;
  if (argc >= 2) get_buffer(env, argv[1], &prefix, &prefix_len);
  else prefix_len = 0;
  if ((prefix_len && send_to_client(c, prefix, prefix_len) != 0) || send_to_client(c, ask, sizeof ask) != 0) {
    conn_close(c, EV_CLOSED, 0, "client write failed");
    return js_bool(env, 0);
  }
  c->state = C_PASSWORD;
  advance(c);
  if (c->state != C_CLOSED) update_polls(c);
  return js_bool(env, 1);
}

/*
 * end(conn, lastWords?: Buffer): sends lastWords (an ErrorResponse) when the
 * client can still be spoken to, then closes. Mid-handshake it just closes.
 * JavaScript hears nothing more of the connection.
 */
static napi_value conn_end(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  conn_t *c = conn_call(env, info, &argc, argv);
  if (!c) return NULL;
  if (c->state == C_CLOSED || c->state == C_CLOSING || c->state == C_SPLICE || c->state == C_RESET) return NULL;
  c->final_sent = 1;
  char *words = NULL;
  size_t words_len = 0;
  if (argc >= 2) get_buffer(env, argv[1], &words, &words_len);
  int mid_handshake = c->tls_started && !c->tls_open;
  release_js(c);
  if (mid_handshake) {
    conn_close(c, 0, 0, "ended");
    return NULL;
  }
  int failed = send_to_client(c, words, words_len) != 0;
  if (!failed && c->tls_open) {
    SSL_shutdown(c->ssl);
    ERR_clear_error();
    failed = send_encrypted(c) != 0;
  }
  if (failed) {
    conn_close(c, 0, 0, "ended");
    return NULL;
  }
  c->state = C_CLOSING;
  if (c->to_client.len == 0) shutdown(c->cfd, SHUT_WR);
  /* Read (and drop) until the client closes, at most a second. */
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_timer, 1000, 0);
  update_polls(c);
  return NULL;
}

/*
 * splice(conn, backendFd, toClient: Buffer, fromBackend: Buffer, reset: boolean) → boolean
 * Sends toClient (AuthenticationOk … ReadyForQuery) then fromBackend, hands
 * the client's bytes read past the password to the backend, and joins the
 * two. The backend descriptor is duplicated: the caller keeps its own.
 * False when the client is already gone (nothing was taken).
 */
static napi_value conn_splice(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  conn_t *c = conn_call(env, info, &argc, argv);
  if (!c) return NULL;
  int32_t bfd;
  char *to_client, *from_backend;
  size_t to_client_len, from_backend_len;
  bool reset = false;
  if (argc < 5 || napi_get_value_int32(env, argv[1], &bfd) != napi_ok ||
      !get_buffer(env, argv[2], &to_client, &to_client_len) ||
      !get_buffer(env, argv[3], &from_backend, &from_backend_len) || napi_get_value_bool(env, argv[4], &reset) != napi_ok)
    return throw_error(env, "splice(conn, backendFd, toClient, fromBackend, reset)");
  if (c->state != C_WAIT_JS || !c->tls_open) return js_bool(env, 0);
  int dup = fcntl(bfd, F_DUPFD_CLOEXEC, 0);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  if (dup < 0) return throw_error(env, "splice: cannot duplicate the backend socket");
  /* uv_poll_init makes the descriptor non-blocking (Node's already is: the flag is shared). */
  if (uv_poll_init(loop, &c->bpoll, dup) != 0) {
    close(dup);
    return throw_error(env, "splice: cannot watch the backend socket");
  }
  c->bfd = dup;
  c->bpoll_open = 1;
  c->refs++;
  c->state = C_SPLICE;
  c->want_reset = reset;
  c->backend_idle = 1; /* the backend has just sent ReadyForQuery 'I' */
  uv_timer_stop(&c->timer);
  if (send_to_client(c, to_client, to_client_len) != 0 || send_to_client(c, from_backend, from_backend_len) != 0) {
    conn_close(c, EV_SPLICE_END, 0, "client write failed");
    return js_bool(env, 1);
  }
  if (c->in.len > 0) {
    int failed = send_to_backend(c, c->in.data, c->in.len) != 0;
    c->in.len = 0;
    if (failed) {
      conn_close(c, EV_SPLICE_END, 0, "backend write failed");
      return js_bool(env, 1);
    }
  }
  update_polls(c);
  return js_bool(env, 1);
}

/* abort(conn): closes now (the proxy is closing). A splice still reports its end. */
static napi_value conn_abort(napi_env env, napi_callback_info info) {
  conn_t *c = external_arg(env, info, "abort(conn)");
  if (!c) return NULL;
  if (c->state == C_SPLICE || c->state == C_RESET) conn_close(c, EV_SPLICE_END, 0, "aborted");
  else if (c->state != C_CLOSED) conn_close(c, c->final_sent ? 0 : EV_CLOSED, 0, "aborted");
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
      {"context", NULL, context_new, NULL, NULL, NULL, napi_default, NULL},
      {"front", NULL, front_new, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, listen_new, NULL, NULL, NULL, napi_default, NULL},
      {"closeListener", NULL, listen_close, NULL, NULL, NULL, napi_default, NULL},
      {"useContext", NULL, conn_use_context, NULL, NULL, NULL, napi_default, NULL},
      {"askPassword", NULL, conn_ask_password, NULL, NULL, NULL, napi_default, NULL},
      {"end", NULL, conn_end, NULL, NULL, NULL, napi_default, NULL},
      {"splice", NULL, conn_splice, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, conn_abort, NULL, NULL, NULL, napi_default, NULL},
      {"addresses", NULL, conn_addresses, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, front_stats, NULL, NULL, NULL, napi_default, NULL},
      {"closeAll", NULL, front_close_all, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
