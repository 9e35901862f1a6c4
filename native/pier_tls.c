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
 * it: a connection costs a handful of callbacks. C counts connections
 * against the caps at accept (JavaScript words the refusal), and stops
 * reading a client while its certificate is being chosen.
 *
 * A backend session, once spliced, stays in C for the rest of its life: C
 * watches it while it waits in the warm pool (and tells JavaScript if it
 * speaks or closes). When a client leaves with an idle-time Terminate, C
 * hands the backend's bytes to JavaScript, which resets it exactly as on the
 * other TLS path (src/proxy/pool.ts `resetSession`) and then says whether it
 * waits for the next client (backendIdle) or is closed.
 *
 * Everything runs on Node's event loop with libuv streams and timers. OpenSSL
 * is the copy inside Node (its symbols are exported to addons), so nothing is
 * linked.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <openssl/err.h>
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

/* Events delivered to JavaScript: onEvent(handle, state, type, a, b, c). */
enum {
  EV_HELLO = 1,      /* a: servername ('' if none) */
  EV_PLAIN = 2,      /* a: the first plaintext packet that is not SSLRequest or GSSENCRequest */
  EV_STARTUP = 3,    /* a: startup packet inside TLS, b: ALPN ('' if none), c: direct TLS */
  EV_PASSWORD = 4,   /* a: message type, b: message body */
  EV_TIMEOUT = 5,    /* the pre-authentication time is up */
  EV_BAD_PACKET = 6, /* a: 'PROTOCOL_VIOLATION' | 'PACKET_TOO_LARGE' | 'DATA_BEFORE_TLS', b: message */
  EV_CLOSED = 7,     /* before a splice, the client went away. a: reason */
  EV_SPLICE_END = 8, /* a: the client left cleanly and the backend is held for JavaScript's reset, c: reason */
  EV_BACKEND_LOST = 9, /* (on a backend) it spoke or closed while waiting for a client, or broke while held. a: reason */
  EV_BACKEND_DATA = 10, /* (on a held backend) a: what it sent, for JavaScript's reset */
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
  C_CLOSING,    /* last words sent; waiting for the client to close (bounded) */
  C_CLOSED,
} conn_state;

/* B_HELD: its client left cleanly; its bytes go to JavaScript (EV_BACKEND_DATA), which resets it. */
typedef enum { B_IDLE, B_SPLICED, B_HELD, B_BROKEN, B_CLOSED } backend_state;

typedef struct front front_t;
typedef struct conn conn_t;

typedef struct backend {
  front_t *f;
  backend_state state;
  int refs; /* the JavaScript external, the open pipe, pending writes, a conn using it */
  uv_pipe_t pipe;
  int pipe_open, reading;
  conn_t *owner; /* the connection it serves */
  napi_ref self, state_ref;
} backend_t;

struct conn {
  front_t *f;
  conn_state state;
  int refs; /* the JavaScript external, the open client handle, the timer, pending writes */
  uv_tcp_t client;
  uv_timer_t timer;
  uv_shutdown_t shutdown_req;
  int client_open, timer_open, reading;
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  int tls_open, tls_started, direct, gss_declined, context_chosen, hello_reported;
  char servername[256];
  char remote[INET6_ADDRSTRLEN], local[INET6_ADDRSTRLEN];
  char client_key[INET6_ADDRSTRLEN + 4]; /* what the per-address cap counts: the IPv4 address, or the IPv6 /64 */
  buffer_t in; /* plaintext read from the client (before TLS: raw) not yet framed */
  backend_t *backend;
  napi_ref self, state_ref;
  int backend_idle, held_terminate, want_reset, final_sent;
  int over_cap; /* 1: over the total cap, 2: over the per-address cap; refused once it can be told */
  conn_t *prev, *next; /* the front's list of live connections */
};

struct front {
  napi_env env;
  napi_ref on_event;
  napi_async_context async_context;
  SSL_CTX *default_ctx; /* owned by its JavaScript external; JavaScript keeps it alive */
  uint32_t max_startup, max_password, preauth_ms;
  uint32_t max_conns, max_per_address, max_refusing; /* connection caps (src/proxy/connection-caps.ts) */
  conn_t *conns;
  size_t count;    /* live connections, those being refused included */
  size_t refusing; /* of which over a cap */
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

/* The client's key for the per-address cap: an IPv6 client may use any address of its /64, so that counts as one. */
static void format_client_key(const struct sockaddr_storage *sa, char *out, size_t size) {
  const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
  if (sa->ss_family != AF_INET6 || IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_LOOPBACK(a)) {
    format_address(sa, out, size);
    return;
  }
  struct in6_addr prefix = *a;
  memset(&prefix.s6_addr[8], 0, 8);
  char text[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &prefix, text, sizeof text);
  snprintf(out, size, "%s/64", text);
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

/*
 * Calls onEvent(handle, state, type, a, b, c). `state` is JavaScript's object
 * for the connection (or backend): the first event creates it, before any
 * nested event can need it. The caller opens a handle scope.
 */
static void call_js(front_t *f, napi_ref self, napi_ref *state_ref, int type, napi_value a, napi_value b,
                    napi_value cc) {
  napi_env env = f->env;
  napi_value callback, global, argv[6], result;
  if (napi_get_reference_value(env, f->on_event, &callback) != napi_ok || !callback) return;
  napi_get_global(env, &global);
  argv[0] = undefined_value(env);
  if (self) napi_get_reference_value(env, self, &argv[0]);
  if (!*state_ref) {
    napi_create_object(env, &argv[1]);
    napi_create_reference(env, argv[1], 1, state_ref);
  } else {
    napi_get_reference_value(env, *state_ref, &argv[1]);
  }
  napi_create_int32(env, type, &argv[2]);
  argv[3] = a ? a : undefined_value(env);
  argv[4] = b ? b : undefined_value(env);
  argv[5] = cc ? cc : undefined_value(env);
  napi_make_callback(env, f->async_context, global, callback, 6, argv, &result);
}

/* ---------- lifetimes ---------- */

static void conn_unref(conn_t *c) {
  if (--c->refs > 0) return;
  if (c->ssl) SSL_free(c->ssl);
  buffer_free(&c->in);
  free(c);
}

static void backend_unref(backend_t *b) {
  if (--b->refs > 0) return;
  free(b);
}

static void read_backend(backend_t *b, int on);

static void on_conn_handle_closed(uv_handle_t *handle) { conn_unref(handle->data); }
static void on_backend_handle_closed(uv_handle_t *handle) { backend_unref(handle->data); }

static void emit(conn_t *c, int type, napi_value a, napi_value b, napi_value cc) {
  c->refs++; /* JavaScript may end the connection while we are still inside this call */
  call_js(c->f, c->self, &c->state_ref, type, a, b, cc);
  conn_unref(c);
}

static void close_client(conn_t *c) {
  if (!c->client_open) return;
  c->client_open = 0;
  uv_close((uv_handle_t *)&c->client, on_conn_handle_closed);
}

static void release_js(napi_env env, napi_ref *self, napi_ref *state_ref) {
  if (*state_ref) napi_delete_reference(env, *state_ref);
  if (*self) napi_delete_reference(env, *self);
  *state_ref = NULL;
  *self = NULL;
}

/* The backend may not serve another client: it stops being read, and JavaScript will close it. */
static void backend_break(backend_t *b) {
  if (b->state == B_CLOSED) return;
  b->state = B_BROKEN;
  read_backend(b, 0);
}

static void backend_detach(conn_t *c) {
  backend_t *b = c->backend;
  if (!b) return;
  c->backend = NULL;
  if (b->owner == c) b->owner = NULL;
  if (b->state == B_SPLICED) backend_break(b);
  backend_unref(b);
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
  if (c->over_cap) f->refusing--;
  close_client(c);
  if (c->timer_open) {
    c->timer_open = 0;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  }
  /* JavaScript hears of the end only of connections it has seen. */
  int tell = final_event && !c->final_sent && c->state_ref;
  napi_env env = f->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  backend_detach(c);
  if (tell) {
    c->final_sent = 1;
    if (final_event == EV_SPLICE_END) emit(c, EV_SPLICE_END, js_bool(env, reusable), NULL, js_string(env, reason));
    else emit(c, EV_CLOSED, js_string(env, reason), NULL, NULL);
  }
  napi_close_handle_scope(env, scope);
  release_js(env, &c->self, &c->state_ref);
}

/* ---------- writing ---------- */

typedef struct {
  uv_write_t req;
  conn_t *conn;       /* set for writes to a client */
  backend_t *backend; /* set for writes to a backend */
  char data[];
} send_t;

static void on_drained(conn_t *c);

static void on_sent(uv_write_t *req, int status) {
  send_t *s = (send_t *)req;
  conn_t *c = s->conn;
  backend_t *b = s->backend;
  free(s);
  if (c) {
    if (status == 0) on_drained(c);
    conn_unref(c);
  } else {
    if (status == 0 && b->owner) on_drained(b->owner);
    backend_unref(b);
  }
}

/* Writes now what the socket takes; libuv queues the rest (in order). -1 when the stream is broken. */
static int stream_send(uv_stream_t *stream, conn_t *c, backend_t *b, const char *data, size_t len) {
  size_t done = 0;
  if (len == 0) return 0;
  if (stream->write_queue_size == 0) {
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
    int n = uv_try_write(stream, &buf, 1);
    if (n >= 0) done = (size_t)n;
    else if (n != UV_EAGAIN) return -1;
  }
  if (done == len) return 0;
  send_t *s = malloc(sizeof *s + (len - done));
  if (!s) return -1;
  memcpy(s->data, data + done, len - done);
  s->conn = c;
  s->backend = b;
  uv_buf_t buf = uv_buf_init(s->data, (unsigned int)(len - done));
  if (uv_write(&s->req, stream, &buf, 1, on_sent) != 0) {
    free(s);
    return -1;
  }
  if (c) c->refs++;
  else b->refs++;
  return 0;
}

static int send_raw(conn_t *c, const char *data, size_t len) {
  return stream_send((uv_stream_t *)&c->client, c, NULL, data, len);
}

/* Moves the TLS engine's output to the client. */
static int send_encrypted(conn_t *c) {
  char chunk[16384];
  for (;;) {
    int n = BIO_read(c->wbio, chunk, sizeof chunk);
    if (n <= 0) return 0;
    if (send_raw(c, chunk, (size_t)n) != 0) return -1;
  }
}

/* Sends plaintext to the client: encrypted once TLS is up, as is before. */
static int send_to_client(conn_t *c, const char *data, size_t len) {
  if (len == 0) return 0;
  if (!c->tls_open) return send_raw(c, data, len);
  if (SSL_write(c->ssl, data, (int)len) != (int)len) {
    ERR_clear_error();
    return -1;
  }
  return send_encrypted(c);
}

static int send_to_backend_raw(backend_t *b, const char *data, size_t len) {
  return stream_send((uv_stream_t *)&b->pipe, NULL, b, data, len);
}

/* ---------- reading ---------- */

static char read_buffer[CHUNK]; /* one thread, and every read is consumed before the next */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  buf->base = read_buffer;
  buf->len = sizeof read_buffer;
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_backend_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void read_backend(backend_t *b, int on) {
  if (!b->pipe_open || b->reading == on) return;
  b->reading = on;
  if (on) uv_read_start((uv_stream_t *)&b->pipe, on_alloc, on_backend_read);
  else uv_read_stop((uv_stream_t *)&b->pipe);
}

static void read_client(conn_t *c, int on) {
  if (!c->client_open || c->reading == on) return;
  c->reading = on;
  if (on) uv_read_start((uv_stream_t *)&c->client, on_alloc, on_client_read);
  else uv_read_stop((uv_stream_t *)&c->client);
}

/* In the splice, a side is read only while the other has taken everything so far. */
static void on_drained(conn_t *c) {
  if (c->state != C_SPLICE || !c->backend) return;
  backend_t *b = c->backend;
  read_client(c, b->pipe.write_queue_size == 0);
  if (b->state == B_SPLICED) read_backend(b, c->client.write_queue_size == 0);
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

/* Refuses (and says so) a declared length outside [min, max]; `what` names the packet. */
static int length_refused(conn_t *c, uint32_t len, uint32_t min, uint32_t max, const char *what) {
  char message[160];
  if (len < min) {
    snprintf(message, sizeof message, "invalid %s length %d", what, (int)len);
    bad_packet(c, "PROTOCOL_VIOLATION", message);
    return 1;
  }
  if (len > max) {
    snprintf(message, sizeof message, "%s of %u bytes exceeds %u", what, len, max);
    bad_packet(c, "PACKET_TOO_LARGE", message);
    return 1;
  }
  return 0;
}

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
    if (length_refused(c, len, 8, c->f->max_startup, "startup packet") || c->in.len < len) return;
    uint32_t code = be32(c->in.data + 4);
    if (code == SSL_REQUEST_CODE && len == 8) {
      if (c->in.len > 8) {
        /* Bytes sent before our answer would be read as TLS by nobody: refuse them (CVE-2021-23214). */
        return bad_packet(c, "DATA_BEFORE_TLS", "Data was sent before the server answered the SSLRequest.");
      }
      c->in.len = 0;
      c->state = C_HANDSHAKE;
      c->tls_started = 1;
      if (send_raw(c, "S", 1) != 0) return conn_close(c, EV_CLOSED, 0, "write failed");
      return;
    }
    if (code == GSSENC_REQUEST_CODE && len == 8 && !c->gss_declined) {
      c->gss_declined = 1;
      buffer_consume(&c->in, 8);
      if (send_raw(c, "N", 1) != 0) return conn_close(c, EV_CLOSED, 0, "write failed");
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
    /* Nothing more is read until the certificate is chosen: what a client sends meanwhile stays in the
       kernel's bounded buffers, not in OpenSSL's. (useContext may run inside the emit below and read again.) */
    read_client(c, 0);
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

/* Decrypts what the engine holds into `in`. Returns -1 (and closes) when the client broke TLS. */
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
  if (c->state == C_STARTUP && c->in.len >= 4) {
    uint32_t len = be32(c->in.data);
    if (length_refused(c, len, 8, c->f->max_startup, "startup packet") || c->in.len < len) return;
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
    if (length_refused(c, len, 4, c->f->max_password, "message") || c->in.len < 1 + (size_t)len) return;
    c->state = C_WAIT_JS; /* the clock runs on until JavaScript says the password held (authenticated) */
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

static void splice_client_data(conn_t *c, const char *data, size_t n);
static void client_gone(conn_t *c, const char *reason);

/* Bytes from the client before the splice. */
static void preauth_client_data(conn_t *c, const char *raw, size_t n) {
  if (!c->tls_started) {
    if (buffer_append(&c->in, raw, n) != 0) return conn_close(c, EV_CLOSED, 0, "out of memory");
    if (c->in.len > (size_t)c->f->max_startup + CHUNK) {
      c->in.len = 0;
      if (c->state == C_PLAIN) return bad_packet(c, "PACKET_TOO_LARGE", "too much data before TLS");
    }
    return advance_plain(c);
  }
  if (BIO_write(c->rbio, raw, (int)n) != (int)n) return conn_close(c, EV_CLOSED, 0, "out of memory");
  if (c->state == C_HANDSHAKE) do_handshake(c);
  else if (c->state != C_HELLO_WAIT && decrypt_available(c) == 0) advance(c);
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (nread == 0 || c->state == C_CLOSED) return;
  if (nread < 0) {
    const char *reason = nread == UV_EOF ? "client closed" : "client read failed";
    if (c->state == C_SPLICE) return client_gone(c, reason);
    return conn_close(c, c->state == C_CLOSING ? 0 : EV_CLOSED, 0, reason);
  }
  if (c->state == C_SPLICE) return splice_client_data(c, buf->base, (size_t)nread);
  if (c->state == C_CLOSING) return; /* dropped: the client is being told goodbye */
  preauth_client_data(c, buf->base, (size_t)nread);
}

static void on_timer(uv_timer_t *timer) {
  conn_t *c = timer->data;
  if (c->state == C_CLOSING) return conn_close(c, 0, 0, "closed");
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
  backend_t *b = c->backend;
  if (c->backend_idle && len == sizeof TERMINATE && memcmp(data, TERMINATE, len) == 0) {
    c->held_terminate = 1; /* sent later only if the client goes on talking */
    return 0;
  }
  if (c->held_terminate) {
    c->held_terminate = 0;
    if (send_to_backend_raw(b, (const char *)TERMINATE, sizeof TERMINATE) != 0) return -1;
  }
  c->backend_idle = 0;
  return send_to_backend_raw(b, data, len);
}

/*
 * The client is gone: the backend may be reused only after an idle-time
 * Terminate and nothing else. Then it is held (still read) for JavaScript's reset.
 */
static void client_gone(conn_t *c, const char *reason) {
  backend_t *b = c->backend;
  if (c->held_terminate && c->backend_idle && c->want_reset && b && b->pipe.write_queue_size == 0) {
    b->state = B_HELD;
    return conn_close(c, EV_SPLICE_END, 1, "client left cleanly");
  }
  conn_close(c, EV_SPLICE_END, 0, reason);
}

static void splice_client_data(conn_t *c, const char *raw, size_t n) {
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
  if (send_encrypted(c) != 0) return client_gone(c, "client write failed");
  on_drained(c);
}

static int ends_with_ready_for_query_idle(const char *data, size_t n) {
  return n >= 6 && data[n - 1] == 'I' && data[n - 2] == 5 && data[n - 3] == 0 && data[n - 4] == 0 &&
         data[n - 5] == 0 && data[n - 6] == 'Z';
}

static void backend_lost(backend_t *b, const char *reason) {
  backend_break(b);
  if (!b->state_ref) return;
  napi_env env = b->f->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  b->refs++;
  call_js(b->f, b->self, &b->state_ref, EV_BACKEND_LOST, js_string(env, reason), NULL, NULL);
  backend_unref(b);
  napi_close_handle_scope(env, scope);
}

/* A held backend's output, for JavaScript's reset. */
static void backend_data(backend_t *b, const char *data, size_t n) {
  if (!b->state_ref) return;
  napi_env env = b->f->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  b->refs++;
  call_js(b->f, b->self, &b->state_ref, EV_BACKEND_DATA, js_copy(env, data, n), NULL, NULL);
  backend_unref(b);
  napi_close_handle_scope(env, scope);
}

static void on_backend_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  backend_t *b = stream->data;
  if (nread == 0) return;
  conn_t *c = b->owner;
  if (b->state == B_SPLICED && c && c->state == C_SPLICE) {
    if (nread < 0) return conn_close(c, EV_SPLICE_END, 0, nread == UV_EOF ? "backend closed" : "backend read failed");
    c->backend_idle = ends_with_ready_for_query_idle(buf->base, (size_t)nread);
    if (send_to_client(c, buf->base, (size_t)nread) != 0) return client_gone(c, "client write failed");
    return on_drained(c);
  }
  if (b->state == B_HELD) {
    if (nread < 0) return backend_lost(b, "backend closed during reset");
    return backend_data(b, buf->base, (size_t)nread);
  }
  /* Waiting for a client, a backend has nothing to say: a notice of shutdown, or it closed. */
  if (b->state == B_IDLE) backend_lost(b, nread < 0 ? "backend closed" : "backend spoke while idle");
  else backend_break(b);
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
 * front(onEvent, defaultContext, { maxStartup, maxPassword, preAuthMs, maxConnections,
 *       maxPerAddress, maxRefusing }) → front
 * One per proxy: the event handler and the limits every connection shares.
 */
static napi_value front_new(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t0;
  SSL_CTX *ctx = NULL;
  if (argc < 3 || napi_typeof(env, argv[0], &t0) != napi_ok || t0 != napi_function ||
      napi_get_value_external(env, argv[1], (void **)&ctx) != napi_ok || !ctx)
    return throw_error(env, "front(onEvent, defaultContext, limits)");
  front_t *f = calloc(1, sizeof *f);
  if (!f) return throw_error(env, "front: out of memory");
  f->env = env;
  f->default_ctx = ctx;
  const char *names[6] = {"maxStartup", "maxPassword", "preAuthMs", "maxConnections", "maxPerAddress",
                          "maxRefusing"};
  uint32_t *fields[6] = {&f->max_startup, &f->max_password, &f->preauth_ms,
                         &f->max_conns,   &f->max_per_address, &f->max_refusing};
  for (int i = 0; i < 6; i++) {
    napi_value v;
    if (napi_get_named_property(env, argv[2], names[i], &v) != napi_ok ||
        napi_get_value_uint32(env, v, fields[i]) != napi_ok) {
      free(f);
      return throw_error(env, "front: limits must be numbers (maxStartup, maxPassword, preAuthMs, "
                              "maxConnections, maxPerAddress, maxRefusing)");
    }
  }
  napi_create_reference(env, argv[0], 1, &f->on_event);
  napi_value name, resource, result;
  napi_create_string_utf8(env, "pier.proxy", NAPI_AUTO_LENGTH, &name);
  napi_create_object(env, &resource);
  napi_async_init(env, resource, name, &f->async_context);
  napi_create_external(env, f, front_finalize, NULL, &result);
  return result;
}

static void conn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  conn_unref((conn_t *)data);
}

/* Connections from `key` within the caps. A scan, done only when the total could be over the per-address cap. */
static uint32_t open_from(front_t *f, const char *key) {
  uint32_t n = 0;
  for (conn_t *o = f->conns; o; o = o->next)
    if (!o->over_cap && strcmp(o->client_key, key) == 0) n++;
  return n;
}

/* 0 within the caps, 1 over the total cap, 2 over the per-address cap. */
static int over_cap(front_t *f, const char *key) {
  size_t counted = f->count - f->refusing;
  if (counted >= f->max_conns) return 1;
  if (counted >= f->max_per_address && open_from(f, key) >= f->max_per_address) return 2;
  return 0;
}

static void accept_one(listener_t *l, int fd, const struct sockaddr_storage *peer) {
  front_t *f = l->f;
  napi_env env = f->env;
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return;
  }
  format_address(peer, c->remote, sizeof c->remote);
  format_client_key(peer, c->client_key, sizeof c->client_key);
  int over = over_cap(f, c->client_key);
  if (over && f->refusing >= f->max_refusing) {
    /* Enough connections are being told "too many" already: this one is closed unanswered. */
    close(fd);
    free(c);
    return;
  }
  c->f = f;
  c->state = C_PLAIN;
  struct sockaddr_storage sa;
  socklen_t sl = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) format_address(&sa, c->local, sizeof c->local);
  c->ssl = SSL_new(f->default_ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  uv_tcp_init(loop, &c->client);
  if (!c->ssl || !c->rbio || !c->wbio || uv_tcp_open(&c->client, fd) != 0) {
    /* The BIOs are not the SSL's yet (SSL_set_bio comes later): each is freed on its own. */
    SSL_free(c->ssl);
    BIO_free(c->rbio);
    BIO_free(c->wbio);
    /* The handle owns nothing yet: close the descriptor ourselves, free the memory once libuv lets go. */
    close(fd);
    c->ssl = NULL;
    c->refs = 1;
    uv_close((uv_handle_t *)&c->client, on_conn_handle_closed);
    return;
  }
  uv_tcp_nodelay(&c->client, 1);
  BIO_set_mem_eof_return(c->rbio, -1);
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_accept_state(c->ssl);
  SSL_set_app_data(c->ssl, c);
  uv_timer_init(loop, &c->timer);
  c->client.data = c->timer.data = c;
  c->client_open = c->timer_open = 1;
  c->refs = 3; /* the external, the client handle, the timer */
  c->next = f->conns;
  if (f->conns) f->conns->prev = c;
  f->conns = c;
  f->count++;
  c->over_cap = over;
  if (over) f->refusing++;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value external;
  napi_create_external(env, c, conn_finalize, NULL, &external);
  napi_create_reference(env, external, 1, &c->self);
  napi_close_handle_scope(env, scope);
  uv_timer_start(&c->timer, on_timer, f->preauth_ms, 0);
  read_client(c, 1);
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
    const char *code = e == EADDRINUSE      ? "EADDRINUSE"
                       : e == EACCES        ? "EACCES"
                       : e == EADDRNOTAVAIL ? "EADDRNOTAVAIL"
                                            : "ELISTEN";
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
    int spliced = c->state == C_SPLICE;
    conn_close(c, spliced ? EV_SPLICE_END : EV_CLOSED, 0, "the proxy is closing");
  }
  return NULL;
}

/* ---------- backends ---------- */

static void backend_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  backend_t *b = data;
  if (b->pipe_open) {
    b->pipe_open = 0;
    b->state = B_CLOSED;
    uv_close((uv_handle_t *)&b->pipe, on_backend_handle_closed);
  }
  backend_unref(b);
}

/*
 * adoptBackend(front, fd, state) → backend. Takes a connected, authenticated,
 * idle backend session (a duplicate of `fd`: the caller closes its own
 * whenever it likes). From now on C reads it; JavaScript closes it with
 * closeBackend and hears EV_BACKEND_LOST (with `state`) if it speaks or closes while idle.
 */
static napi_value backend_adopt(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  front_t *f = NULL;
  int32_t fd;
  napi_valuetype state_type;
  if (argc < 3 || napi_get_value_external(env, argv[0], (void **)&f) != napi_ok || !f ||
      napi_get_value_int32(env, argv[1], &fd) != napi_ok || napi_typeof(env, argv[2], &state_type) != napi_ok ||
      state_type != napi_object)
    return throw_error(env, "adoptBackend(front, fd, state)");
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return throw_error(env, "adoptBackend: cannot duplicate the backend socket");
  backend_t *b = calloc(1, sizeof *b);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  if (!b) {
    close(dup);
    return throw_error(env, "adoptBackend: out of memory");
  }
  uv_pipe_init(loop, &b->pipe, 0);
  b->pipe.data = b;
  if (uv_pipe_open(&b->pipe, dup) != 0) {
    close(dup);
    b->refs = 1;
    uv_close((uv_handle_t *)&b->pipe, on_backend_handle_closed);
    return throw_error(env, "adoptBackend: cannot watch the backend socket");
  }
  b->f = f;
  b->state = B_IDLE;
  b->pipe_open = 1;
  b->refs = 2; /* the external, the pipe */
  napi_value external;
  napi_create_external(env, b, backend_finalize, NULL, &external);
  napi_create_reference(env, external, 0, &b->self); /* weak: JavaScript's session holds it */
  napi_create_reference(env, argv[2], 1, &b->state_ref); /* until closeBackend */
  read_backend(b, 1);
  return external;
}

/* closeBackend(backend): closes the session (ending a splice that still uses it). */
static napi_value backend_close(napi_env env, napi_callback_info info) {
  backend_t *b = external_arg(env, info, "closeBackend(backend)");
  if (!b) return NULL;
  if (b->owner) conn_close(b->owner, EV_SPLICE_END, 0, "backend closed");
  if (b->pipe_open) {
    b->pipe_open = 0;
    b->state = B_CLOSED;
    uv_close((uv_handle_t *)&b->pipe, on_backend_handle_closed);
  }
  if (b->state_ref) napi_delete_reference(env, b->state_ref);
  if (b->self) napi_delete_reference(env, b->self);
  b->state_ref = b->self = NULL;
  return NULL;
}

static int get_buffer(napi_env env, napi_value value, char **data, size_t *len);

/* backendWrite(backend, data: Buffer) → boolean: writes to a held backend (JavaScript's reset). */
static napi_value backend_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  backend_t *b = NULL;
  char *data;
  size_t len;
  if (argc < 2 || napi_get_value_external(env, argv[0], (void **)&b) != napi_ok || !b ||
      !get_buffer(env, argv[1], &data, &len))
    return throw_error(env, "backendWrite(backend, data)");
  return js_bool(env, b->state == B_HELD && send_to_backend_raw(b, data, len) == 0);
}

/* backendIdle(backend): the reset proved a held backend clean; it waits for the next client (watched). */
static napi_value backend_idle(napi_env env, napi_callback_info info) {
  backend_t *b = external_arg(env, info, "backendIdle(backend)");
  if (b && b->state == B_HELD) b->state = B_IDLE;
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
  *data = NULL;
  *len = 0;
  if (!is_buffer) return 0;
  return napi_get_buffer_info(env, value, (void **)data, len) == napi_ok ? 1 : 0;
}

/* addresses(conn) → [remote, local, over cap: '' | 'total' | 'address'] */
static napi_value conn_addresses(napi_env env, napi_callback_info info) {
  conn_t *c = external_arg(env, info, "addresses(conn)");
  if (!c) return NULL;
  static const char *const caps[3] = {"", "total", "address"};
  napi_value result;
  napi_create_array_with_length(env, 3, &result);
  napi_set_element(env, result, 0, js_string(env, c->remote));
  napi_set_element(env, result, 1, js_string(env, c->local));
  napi_set_element(env, result, 2, js_string(env, caps[c->over_cap]));
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
  read_client(c, 1);
  do_handshake(c);
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
  char *prefix = NULL;
  size_t prefix_len = 0;
  if (argc >= 2) get_buffer(env, argv[1], &prefix, &prefix_len);
  if ((prefix_len && send_to_client(c, prefix, prefix_len) != 0) || send_to_client(c, ask, sizeof ask) != 0) {
    conn_close(c, EV_CLOSED, 0, "client write failed");
    return js_bool(env, 0);
  }
  c->state = C_PASSWORD;
  advance(c);
  return js_bool(env, 1);
}

/* authenticated(conn): the password held; the pre-authentication clock stops (connecting has its own). */
static napi_value conn_authenticated(napi_env env, napi_callback_info info) {
  conn_t *c = external_arg(env, info, "authenticated(conn)");
  if (c && c->state == C_WAIT_JS) uv_timer_stop(&c->timer);
  return NULL;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  conn_unref(req->data);
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
  if (c->state == C_CLOSED || c->state == C_CLOSING || c->state == C_SPLICE) return NULL;
  c->final_sent = 1;
  char *words = NULL;
  size_t words_len = 0;
  if (argc >= 2) get_buffer(env, argv[1], &words, &words_len);
  if (c->tls_started && !c->tls_open) {
    conn_close(c, 0, 0, "ended");
    return NULL;
  }
  int failed = send_to_client(c, words, words_len) != 0;
  if (!failed && c->tls_open) {
    SSL_shutdown(c->ssl);
    ERR_clear_error();
    failed = send_encrypted(c) != 0;
  }
  if (!failed) {
    /* FIN once the words are out; then read (and drop) until the client closes, at most a second. */
    c->shutdown_req.data = c;
    failed = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->client, on_shutdown) != 0;
    if (!failed) c->refs++;
  }
  if (failed) {
    conn_close(c, 0, 0, "ended");
    return NULL;
  }
  c->state = C_CLOSING;
  read_client(c, 1);
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_timer, 1000, 0);
  return NULL;
}

/*
 * splice(conn, backend, toClient: Buffer, fromBackend: Buffer, reset: boolean) → 1 | 0 | -1
 * Sends toClient (AuthenticationOk … ReadyForQuery) then fromBackend, hands
 * the client's bytes read past the password to the backend, and joins the
 * two. 0: the client is already gone; -1: the backend cannot serve (it broke
 * while waiting). In both cases nothing was taken.
 */
static napi_value conn_splice(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  conn_t *c = conn_call(env, info, &argc, argv);
  if (!c) return NULL;
  backend_t *b = NULL;
  char *to_client, *from_backend;
  size_t to_client_len, from_backend_len;
  bool reset = false;
  if (argc < 5 || napi_get_value_external(env, argv[1], (void **)&b) != napi_ok || !b ||
      !get_buffer(env, argv[2], &to_client, &to_client_len) ||
      !get_buffer(env, argv[3], &from_backend, &from_backend_len) ||
      napi_get_value_bool(env, argv[4], &reset) != napi_ok)
    return throw_error(env, "splice(conn, backend, toClient, fromBackend, reset)");
  napi_value result;
  if (c->state != C_WAIT_JS || !c->tls_open) {
    napi_create_int32(env, 0, &result);
    return result;
  }
  if (b->state != B_IDLE || b->owner) {
    napi_create_int32(env, -1, &result);
    return result;
  }
  b->refs++;
  b->owner = c;
  b->state = B_SPLICED;
  c->backend = b;
  c->state = C_SPLICE;
  c->want_reset = reset;
  c->backend_idle = 1; /* the backend has just sent ReadyForQuery 'I' */
  uv_timer_stop(&c->timer);
  napi_create_int32(env, 1, &result);
  if (send_to_client(c, to_client, to_client_len) != 0 || send_to_client(c, from_backend, from_backend_len) != 0) {
    conn_close(c, EV_SPLICE_END, 0, "client write failed");
    return result;
  }
  if (c->in.len > 0) {
    int failed = send_to_backend(c, c->in.data, c->in.len) != 0;
    c->in.len = 0;
    if (failed) {
      conn_close(c, EV_SPLICE_END, 0, "backend write failed");
      return result;
    }
  }
  on_drained(c);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
      {"context", NULL, context_new, NULL, NULL, NULL, napi_default, NULL},
      {"front", NULL, front_new, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, listen_new, NULL, NULL, NULL, napi_default, NULL},
      {"closeListener", NULL, listen_close, NULL, NULL, NULL, napi_default, NULL},
      {"useContext", NULL, conn_use_context, NULL, NULL, NULL, napi_default, NULL},
      {"askPassword", NULL, conn_ask_password, NULL, NULL, NULL, napi_default, NULL},
      {"authenticated", NULL, conn_authenticated, NULL, NULL, NULL, napi_default, NULL},
      {"end", NULL, conn_end, NULL, NULL, NULL, napi_default, NULL},
      {"splice", NULL, conn_splice, NULL, NULL, NULL, napi_default, NULL},
      {"addresses", NULL, conn_addresses, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, front_stats, NULL, NULL, NULL, napi_default, NULL},
      {"closeAll", NULL, front_close_all, NULL, NULL, NULL, napi_default, NULL},
      {"adoptBackend", NULL, backend_adopt, NULL, NULL, NULL, napi_default, NULL},
      {"closeBackend", NULL, backend_close, NULL, NULL, NULL, napi_default, NULL},
      {"backendWrite", NULL, backend_write, NULL, NULL, NULL, napi_default, NULL},
      {"backendIdle", NULL, backend_idle, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
