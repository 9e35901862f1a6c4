/*
 * pier_tls: the proxy's optional native TLS path.
 *
 * The JavaScript proxy stays in charge of every decision: it reads the
 * encrypted bytes from its own socket, feeds them to a session here, and gets
 * back the bytes to send and the plaintext (startup packet, password). The
 * handshake pauses when the client names a server (SNI) so JavaScript can
 * pick the certificate. Once the client is authenticated and the backend is
 * ready, `splice` takes over both file descriptors: from then on every byte
 * moves in C on the Node event loop (uv_poll), one read and one write a
 * message, with no JavaScript per message. It ends, and tells JavaScript
 * whether the backend session may be reused, when either side goes.
 *
 * OpenSSL is the copy inside Node (its symbols are exported to addons), so
 * nothing is linked here.
 */
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define CHUNK 65536

typedef struct {
  char *data;
  size_t len, cap;
} buffer_t;

typedef enum { HANDSHAKE, OPEN, SPLICING, ENDED } session_state;

typedef struct session {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  session_state state;
  int context_chosen;     /* the client-hello callback has been answered */
  char servername[256];   /* SNI, empty when none */
  /* splice */
  napi_env env;
  napi_ref on_end;
  napi_async_context async_context;
  int cfd, bfd;
  uv_poll_t cpoll, bpoll;
  int cevents, bevents; /* what each poll watches now: changing it costs a system call */
  int open_polls;
  buffer_t to_client, to_backend; /* bytes the socket would not take yet */
  int backend_idle;               /* the backend's last bytes were ReadyForQuery 'I' */
  int held_terminate;             /* the client's Terminate, held back while deciding reuse */
  int reusable;
  const char *end_reason;
} session_t;

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

static napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

static void openssl_error_text(char *out, size_t size, const char *prefix) {
  unsigned long code = ERR_get_error();
  char detail[200] = "";
  if (code) ERR_error_string_n(code, detail, sizeof detail);
  ERR_clear_error();
  snprintf(out, size, "%s%s%s", prefix, detail[0] ? ": " : "", detail);
}

/* Reads all pending encrypted output of the session into a new JS Buffer (or undefined). */
static napi_value drain_output(napi_env env, session_t *s) {
  napi_value result;
  size_t pending = BIO_ctrl_pending(s->wbio);
  if (pending == 0) {
    napi_get_undefined(env, &result);
    return result;
  }
  void *data;
  napi_create_buffer(env, pending, &data, &result);
  BIO_read(s->wbio, data, (int)pending);
  return result;
}

/* ---------- contexts ---------- */

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

/* Pauses the handshake once so JavaScript can choose the context for the SNI name. */
static int on_client_hello(SSL *ssl, int *alert, void *arg) {
  (void)alert;
  (void)arg;
  session_t *s = SSL_get_app_data(ssl);
  if (s->context_chosen) return SSL_CLIENT_HELLO_SUCCESS;
  read_servername(ssl, s->servername, sizeof s->servername);
  if (s->servername[0] == 0) {
    s->context_chosen = 1;
    return SSL_CLIENT_HELLO_SUCCESS;
  }
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
  /* No session tickets or cache: the JavaScript path resumes sessions, this one does full handshakes. */
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

/* ---------- sessions ---------- */

static void session_free_ssl(session_t *s) {
  if (s->ssl) SSL_free(s->ssl);
  s->ssl = NULL;
}

static void session_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  session_t *s = data;
  /* A splice holds a reference to its session object until it ends, so this is never mid-splice. */
  session_free_ssl(s);
  free(s->to_client.data);
  free(s->to_backend.data);
  free(s);
}

static session_t *session_arg(napi_env env, napi_value value) {
  session_t *s = NULL;
  if (napi_get_value_external(env, value, (void **)&s) != napi_ok || !s) {
    throw_error(env, "expected a TLS session");
    return NULL;
  }
  return s;
}

/* Unpacks a call whose first argument is a session; NULL (with an exception pending) if it is not. */
static session_t *session_call(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_get_cb_info(env, info, argc, argv, NULL, NULL);
  if (*argc < 1) {
    throw_error(env, "expected a TLS session as the first argument");
    return NULL;
  }
  return session_arg(env, argv[0]);
}

/* session(context) */
static napi_value session_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  SSL_CTX *ctx = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&ctx) != napi_ok || !ctx)
    return throw_error(env, "session(context)");
  session_t *s = calloc(1, sizeof *s);
  if (!s) return throw_error(env, "session: out of memory");
  s->ssl = SSL_new(ctx);
  s->rbio = BIO_new(BIO_s_mem());
  s->wbio = BIO_new(BIO_s_mem());
  if (!s->ssl || !s->rbio || !s->wbio) {
    if (s->ssl) SSL_free(s->ssl);
    free(s);
    return throw_error(env, "session: out of memory");
  }
  BIO_set_mem_eof_return(s->rbio, -1);
  SSL_set_bio(s->ssl, s->rbio, s->wbio);
  SSL_set_accept_state(s->ssl);
  SSL_set_app_data(s->ssl, s);
  s->cfd = s->bfd = -1;
  s->backend_idle = 1; /* the backend has just sent ReadyForQuery 'I' when a splice starts */
  napi_value result;
  napi_create_external(env, s, session_finalize, NULL, &result);
  return result;
}

/* useContext(session, context): answers the paused handshake's SNI question. */
static napi_value session_use_context(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  session_t *s = argc >= 1 ? session_arg(env, argv[0]) : NULL;
  SSL_CTX *ctx = NULL;
  if (!s) return NULL;
  if (argc >= 2) {
    napi_valuetype type;
    napi_typeof(env, argv[1], &type);
    if (type == napi_external) napi_get_value_external(env, argv[1], (void **)&ctx);
  }
  if (!s->ssl || s->state != HANDSHAKE) return throw_error(env, "useContext: the handshake is over");
  if (ctx) SSL_set_SSL_CTX(s->ssl, ctx);
  s->context_chosen = 1;
  return NULL;
}

static void set_string(napi_env env, napi_value object, const char *name, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, object, name, v);
}

static void set_bool(napi_env env, napi_value object, const char *name, int value) {
  napi_value v;
  napi_get_boolean(env, value, &v);
  napi_set_named_property(env, object, name, v);
}

/*
 * feed(session, encrypted?: Buffer) → { output?, plaintext?, servername?, alpn?, secure, needContext,
 *                                       closed, error? }
 * Consumes bytes from the client; returns what to send back and what was decrypted.
 */
static napi_value session_feed(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  session_t *s = session_call(env, info, &argc, argv);
  if (!s) return NULL;
  if (!s->ssl || (s->state != HANDSHAKE && s->state != OPEN))
    return throw_error(env, "feed: the session is spliced or over");
  napi_value result;
  napi_create_object(env, &result);
  if (argc >= 2) {
    bool is_buffer = false;
    napi_is_buffer(env, argv[1], &is_buffer);
    if (is_buffer) {
      char *data;
      size_t len;
      napi_get_buffer_info(env, argv[1], (void **)&data, &len);
      if (len > 0 && BIO_write(s->rbio, data, (int)len) != (int)len)
        return throw_error(env, "feed: out of memory");
    }
  }
  char message[300];
  int need_context = 0, closed = 0, failed = 0;
  if (s->state == HANDSHAKE) {
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
      s->state = OPEN;
      set_bool(env, result, "secure", 1);
      const unsigned char *alpn;
      unsigned int alpn_len;
      SSL_get0_alpn_selected(s->ssl, &alpn, &alpn_len);
      char alpn_text[64] = "";
      if (alpn_len > 0 && alpn_len < sizeof alpn_text) {
        memcpy(alpn_text, alpn, alpn_len);
        alpn_text[alpn_len] = 0;
      }
      set_string(env, result, "alpn", alpn_text);
    } else {
      int e = SSL_get_error(s->ssl, r);
      if (e == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
        need_context = 1;
        set_string(env, result, "servername", s->servername);
      } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        openssl_error_text(message, sizeof message, "TLS handshake failed");
        failed = 1;
      }
    }
  }
  if (s->state == OPEN) {
    /* Everything decrypted so far, as one Buffer: the proxy reads only a few small packets this way. */
    buffer_t plain = {0};
    char chunk[16384];
    for (;;) {
      int n = SSL_read(s->ssl, chunk, sizeof chunk);
      if (n > 0) {
        if (buffer_append(&plain, chunk, (size_t)n) != 0) {
          failed = 1;
          snprintf(message, sizeof message, "out of memory");
          break;
        }
        continue;
      }
      int e = SSL_get_error(s->ssl, n);
      if (e == SSL_ERROR_ZERO_RETURN) closed = 1;
      else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        openssl_error_text(message, sizeof message, "TLS error");
        failed = 1;
      }
      break;
    }
    if (plain.len > 0) {
      napi_value buf;
      void *data;
      napi_create_buffer_copy(env, plain.len, plain.data, &data, &buf);
      napi_set_named_property(env, result, "plaintext", buf);
    }
    free(plain.data);
  }
  napi_set_named_property(env, result, "output", drain_output(env, s));
  set_bool(env, result, "needContext", need_context);
  set_bool(env, result, "closed", closed);
  if (failed) set_string(env, result, "error", message);
  return result;
}

/* encrypt(session, plaintext: Buffer) → Buffer */
static napi_value session_encrypt(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  session_t *s = session_call(env, info, &argc, argv);
  if (!s) return NULL;
  if (!s->ssl || s->state != OPEN) return throw_error(env, "encrypt: the session is not open");
  char *data;
  size_t len;
  if (argc < 2 || napi_get_buffer_info(env, argv[1], (void **)&data, &len) != napi_ok)
    return throw_error(env, "encrypt(session, Buffer)");
  if (len > 0 && SSL_write(s->ssl, data, (int)len) != (int)len) {
    char message[300];
    openssl_error_text(message, sizeof message, "TLS write failed");
    return throw_error(env, message);
  }
  return drain_output(env, s);
}

/* shutdown(session) → Buffer | undefined: the close_notify alert. */
static napi_value session_shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  session_t *s = session_call(env, info, &argc, argv);
  if (!s) return NULL;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  if (!s->ssl || s->state != OPEN) return undefined;
  SSL_shutdown(s->ssl);
  ERR_clear_error();
  return drain_output(env, s);
}

/* ---------- splice ---------- */

static void on_client_event(uv_poll_t *handle, int status, int events);
static void on_backend_event(uv_poll_t *handle, int status, int events);

static void update_polls(session_t *s) {
  if (s->state != SPLICING) return;
  /* Read a side only while the other side has taken everything so far. */
  int c = (s->to_backend.len == 0 ? UV_READABLE : 0) | (s->to_client.len ? UV_WRITABLE : 0);
  int b = (s->to_client.len == 0 ? UV_READABLE : 0) | (s->to_backend.len ? UV_WRITABLE : 0);
  if (c != s->cevents) {
    if (c) uv_poll_start(&s->cpoll, c, on_client_event);
    else uv_poll_stop(&s->cpoll);
    s->cevents = c;
  }
  if (b != s->bevents) {
    if (b) uv_poll_start(&s->bpoll, b, on_backend_event);
    else uv_poll_stop(&s->bpoll);
    s->bevents = b;
  }
}

static void on_poll_closed(uv_handle_t *handle) {
  session_t *s = handle->data;
  if (--s->open_polls > 0) return;
  if (s->cfd >= 0) close(s->cfd);
  if (s->bfd >= 0) close(s->bfd);
  s->cfd = s->bfd = -1;
  session_free_ssl(s);
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback, global, argv[2], ignored;
  napi_get_reference_value(env, s->on_end, &callback);
  napi_get_global(env, &global);
  napi_get_boolean(env, s->reusable, &argv[0]);
  napi_create_string_utf8(env, s->end_reason ? s->end_reason : "", NAPI_AUTO_LENGTH, &argv[1]);
  napi_async_context context = s->async_context;
  napi_ref on_end = s->on_end;
  s->on_end = NULL;
  s->async_context = NULL;
  /* May run JavaScript that drops the last reference to the session: touch nothing after. */
  napi_make_callback(env, context, global, callback, 2, argv, &ignored);
  napi_async_destroy(env, context);
  napi_delete_reference(env, on_end);
  napi_close_handle_scope(env, scope);
}

/* Both sides stop; JavaScript hears of it once both polls are closed. */
static void end_splice(session_t *s, int reusable, const char *reason) {
  if (s->state != SPLICING) return;
  s->state = ENDED;
  s->reusable = reusable;
  s->end_reason = reason;
  uv_close((uv_handle_t *)&s->cpoll, on_poll_closed);
  uv_close((uv_handle_t *)&s->bpoll, on_poll_closed);
}

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

static int send_to_backend(session_t *s, const char *data, size_t len) {
  if (s->backend_idle && len == sizeof TERMINATE && memcmp(data, TERMINATE, len) == 0) {
    s->held_terminate = 1; /* sent later only if the client goes on talking */
    return 0;
  }
  if (s->held_terminate) {
    s->held_terminate = 0;
    if (write_or_queue(s->bfd, &s->to_backend, (const char *)TERMINATE, sizeof TERMINATE) != 0) return -1;
  }
  s->backend_idle = 0;
  return write_or_queue(s->bfd, &s->to_backend, data, len);
}

static int send_encrypted_to_client(session_t *s) {
  char chunk[CHUNK];
  for (;;) {
    int n = BIO_read(s->wbio, chunk, sizeof chunk);
    if (n <= 0) return 0;
    if (write_or_queue(s->cfd, &s->to_client, chunk, (size_t)n) != 0) return -1;
  }
}

/* The client is gone: the backend may be reused only after an idle-time Terminate and nothing else. */
static void client_gone(session_t *s, const char *reason) {
  end_splice(s, s->held_terminate && s->to_backend.len == 0, reason);
}

static void on_client_event(uv_poll_t *handle, int status, int events) {
  session_t *s = handle->data;
  if (s->state != SPLICING) return;
  if (status < 0) return client_gone(s, "client socket error");
  if (events & UV_WRITABLE) {
    if (flush_pending(s->cfd, &s->to_client) != 0) return client_gone(s, "client write failed");
  }
  if ((events & UV_READABLE) && s->to_backend.len == 0) {
    char raw[CHUNK];
    ssize_t n = read(s->cfd, raw, sizeof raw);
    if (n == 0) return client_gone(s, "client closed");
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return client_gone(s, "client read failed");
    } else if (BIO_write(s->rbio, raw, (int)n) != (int)n) {
      return end_splice(s, 0, "out of memory");
    }
    char plain[CHUNK];
    for (;;) {
      int k = SSL_read(s->ssl, plain, sizeof plain);
      if (k > 0) {
        if (send_to_backend(s, plain, (size_t)k) != 0) return end_splice(s, 0, "backend write failed");
        continue;
      }
      int e = SSL_get_error(s->ssl, k);
      if (e == SSL_ERROR_ZERO_RETURN) return client_gone(s, "client closed");
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return client_gone(s, "client TLS error");
      }
      break;
    }
    /* A TLS 1.3 KeyUpdate may need an answer. */
    if (send_encrypted_to_client(s) != 0) return client_gone(s, "client write failed");
  }
  update_polls(s);
}

static int ends_with_ready_for_query_idle(const char *data, size_t n) {
  return n >= 6 && data[n - 1] == 'I' && data[n - 2] == 5 && data[n - 3] == 0 && data[n - 4] == 0 &&
         data[n - 5] == 0 && data[n - 6] == 'Z';
}

static void on_backend_event(uv_poll_t *handle, int status, int events) {
  session_t *s = handle->data;
  if (s->state != SPLICING) return;
  if (status < 0) return end_splice(s, 0, "backend socket error");
  if (events & UV_WRITABLE) {
    if (flush_pending(s->bfd, &s->to_backend) != 0) return end_splice(s, 0, "backend write failed");
  }
  if ((events & UV_READABLE) && s->to_client.len == 0) {
    char plain[CHUNK];
    ssize_t n = read(s->bfd, plain, sizeof plain);
    if (n == 0) return end_splice(s, 0, "backend closed");
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return end_splice(s, 0, "backend read failed");
    } else {
      s->backend_idle = ends_with_ready_for_query_idle(plain, (size_t)n);
      if (SSL_write(s->ssl, plain, (int)n) != (int)n) {
        ERR_clear_error();
        return end_splice(s, 0, "TLS write failed");
      }
      if (send_encrypted_to_client(s) != 0) return client_gone(s, "client write failed");
    }
  }
  update_polls(s);
}

/*
 * splice(session, clientFd, backendFd, leftover: Buffer, onEnd(reusable, reason))
 * The descriptors are duplicated: the caller keeps (and later closes) its own.
 */
static napi_value session_splice(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  session_t *s = session_call(env, info, &argc, argv);
  if (!s) return NULL;
  if (argc < 5) return throw_error(env, "splice(session, clientFd, backendFd, leftover, onEnd)");
  if (!s->ssl || s->state != OPEN) return throw_error(env, "splice: the session is not open");
  int32_t cfd, bfd;
  char *leftover;
  size_t leftover_len;
  if (napi_get_value_int32(env, argv[1], &cfd) != napi_ok || napi_get_value_int32(env, argv[2], &bfd) != napi_ok ||
      napi_get_buffer_info(env, argv[3], (void **)&leftover, &leftover_len) != napi_ok)
    return throw_error(env, "splice: expected two descriptors and a Buffer");
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  s->cfd = fcntl(cfd, F_DUPFD_CLOEXEC, 0);
  s->bfd = fcntl(bfd, F_DUPFD_CLOEXEC, 0);
  if (s->cfd < 0 || s->bfd < 0) {
    if (s->cfd >= 0) close(s->cfd);
    if (s->bfd >= 0) close(s->bfd);
    s->cfd = s->bfd = -1;
    return throw_error(env, "splice: cannot duplicate the sockets");
  }
  /* uv_poll_init makes the descriptors non-blocking (Node's already are: the flag is shared). */
  if (uv_poll_init(loop, &s->cpoll, s->cfd) != 0 || uv_poll_init(loop, &s->bpoll, s->bfd) != 0) {
    close(s->cfd);
    close(s->bfd);
    s->cfd = s->bfd = -1;
    return throw_error(env, "splice: cannot watch the sockets");
  }
  s->cpoll.data = s->bpoll.data = s;
  s->open_polls = 2;
  s->env = env;
  napi_create_reference(env, argv[4], 1, &s->on_end);
  napi_value name;
  napi_create_string_utf8(env, "pier.splice", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, argv[0], name, &s->async_context);
  /* The JavaScript wrapper holds the session object until onEnd has run. */
  s->state = SPLICING;
  if (leftover_len > 0 && send_to_backend(s, leftover, leftover_len) != 0) end_splice(s, 0, "backend write failed");
  else if (BIO_ctrl_pending(s->rbio) > 0 || SSL_pending(s->ssl) > 0) on_client_event(&s->cpoll, 0, UV_READABLE);
  update_polls(s);
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

/* abort(session): ends a splice now (the proxy is closing); onEnd still runs. */
static napi_value session_abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  session_t *s = session_call(env, info, &argc, argv);
  if (!s) return NULL;
  end_splice(s, 0, "aborted");
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
      {"context", NULL, context_new, NULL, NULL, NULL, napi_default, NULL},
      {"session", NULL, session_new, NULL, NULL, NULL, napi_default, NULL},
      {"useContext", NULL, session_use_context, NULL, NULL, NULL, napi_default, NULL},
      {"feed", NULL, session_feed, NULL, NULL, NULL, napi_default, NULL},
      {"encrypt", NULL, session_encrypt, NULL, NULL, NULL, napi_default, NULL},
      {"shutdown", NULL, session_shutdown, NULL, NULL, NULL, napi_default, NULL},
      {"splice", NULL, session_splice, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, session_abort, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
