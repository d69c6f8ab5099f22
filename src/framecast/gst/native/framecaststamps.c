/* framecaststamps: the compiled hot path of framecastinject for stamps-only mounts.
 *
 * Same output as the Python element (src/framecast/gst/inject.py) when its only provider is
 * the built-in stamps: one SEI user-data-unregistered message (framecast UUID, msgpack or JSON
 * {"seq", "loop", "pts_ns", "wallclock_ns"}) before the first VCL NAL of every access unit,
 * keyed by presented PTS (FrameIndexer's rules), plus any GstVideoSEIUserDataUnregisteredMeta
 * whose bytes the AU does not already carry. Why C: a Python element costs ~65 us per buffer
 * before doing any work; this costs a few. The pure framecast.sei module stays the reference:
 * tests compare both outputs byte for byte.
 *
 * Built by scripts/setup.sh; loaded by framecast.gst.stamps (Gst.Plugin.load_file).
 */
#define _GNU_SOURCE /* memmem */
#include <gst/gst.h>
#include <gst/video/video-sei.h>
#include <string.h>
#include <time.h>

#define PACKAGE "framecast"
#define MAX_WARNINGS 10

static const guint8 FRAMECAST_UUID[16] = {0x54, 0xbc, 0x32, 0x58, 0xc9, 0x63, 0x44, 0xb9,
                                          0xbf, 0x5d, 0x21, 0x5c, 0x58, 0x23, 0xbc, 0x0e};

GST_DEBUG_CATEGORY_STATIC(stamps_debug);
#define GST_CAT_DEFAULT stamps_debug

typedef struct {
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  /* configuration */
  gint64 *video_pts; /* sorted presented PTS of one loop of the file */
  gsize n_pts;
  gint64 period_ns, frame_ns;
  gboolean counter, json;
  GstClockTime fixed_wallclock; /* tests: a fixed wallclock_ns (0 = the real clock) */
  /* stream state */
  gboolean h265, have_codec;
  gint length_size; /* 0 = Annex B */
  GstSegment segment;
  gboolean have_first_rt;
  gint64 first_rt, count;
  guint64 frames, buffers;
  guint warnings;
} GstFramecastStamps;

typedef struct {
  GstElementClass parent_class;
} GstFramecastStampsClass;

GType gst_framecast_stamps_get_type(void);
G_DEFINE_TYPE(GstFramecastStamps, gst_framecast_stamps, GST_TYPE_ELEMENT)

enum { PROP_0, PROP_VIDEO_PTS, PROP_PERIOD_NS, PROP_FRAME_NS, PROP_COUNTER, PROP_FORMAT,
       PROP_FIXED_WALLCLOCK, PROP_FRAMES, PROP_BUFFERS };

#define CAPS_STR                                                                            \
  "video/x-h264, stream-format=(string){ avc, avc3, byte-stream }, alignment=(string)au; "   \
  "video/x-h265, stream-format=(string){ hvc1, hev1, byte-stream }, alignment=(string)au"

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(CAPS_STR));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(CAPS_STR));

/* Python's // and its bisect_left, so the indices match FrameIndexer exactly */
static gint64 floordiv(gint64 a, gint64 b) {
  gint64 q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static gsize bisect_left(const gint64 *v, gsize n, gint64 x) {
  gsize lo = 0, hi = n;
  while (lo < hi) {
    gsize mid = (lo + hi) / 2;
    if (v[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

static void locate(GstFramecastStamps *s, gint64 pts, gint64 running, gint64 base,
                   gint64 *index, gint64 *loop, gint64 *seq) {
  if (s->n_pts && s->period_ns > 0) {
    const gint64 *vp = s->video_pts, period = s->period_ns;
    gint64 rel = pts - vp[0];
    gint64 extra = rel >= period ? floordiv(rel, period) : 0; /* looper that offsets PTS */
    gint64 p = pts - extra * period;
    gsize i = bisect_left(vp, s->n_pts, p);
    if (i == s->n_pts || (i > 0 && p - vp[i - 1] < vp[i] - p)) i -= 1;
    *loop = floordiv(base + period / 2, period) + extra;
    *index = (gint64)i;
    *seq = *loop * (gint64)s->n_pts + (gint64)i;
    return;
  }
  if (s->frame_ns > 0 && running >= 0 && !s->counter) {
    if (!s->have_first_rt) { s->first_rt = running; s->have_first_rt = TRUE; }
    *index = *seq = floordiv(running - s->first_rt + s->frame_ns / 2, s->frame_ns);
    *loop = 0;
    return;
  }
  *index = *seq = s->count++;
  *loop = 0;
}

/* -- payload: msgpack-python's packb / json.dumps(separators=(",", ":")) of the stamps ---- */

static void pack_uint(GByteArray *b, guint64 u) {
  guint8 t[9];
  int n;
  if (u < 128) { t[0] = (guint8)u; n = 1; }
  else if (u <= 0xff) { t[0] = 0xcc; n = 2; }
  else if (u <= 0xffff) { t[0] = 0xcd; n = 3; }
  else if (u <= 0xffffffffu) { t[0] = 0xce; n = 5; }
  else { t[0] = 0xcf; n = 9; }
  for (int k = 1; k < n; k++) t[k] = (guint8)(u >> (8 * (n - 1 - k)));
  g_byte_array_append(b, t, n);
}

static void pack_int(GByteArray *b, gint64 v) {
  guint8 t[9];
  int n;
  if (v >= 0) { pack_uint(b, (guint64)v); return; }
  if (v >= -32) { t[0] = (guint8)(gint8)v; n = 1; }
  else if (v >= G_MININT8) { t[0] = 0xd0; n = 2; }
  else if (v >= G_MININT16) { t[0] = 0xd1; n = 3; }
  else if (v >= G_MININT32) { t[0] = 0xd2; n = 5; }
  else { t[0] = 0xd3; n = 9; }
  for (int k = 1; k < n; k++) t[k] = (guint8)((guint64)v >> (8 * (n - 1 - k)));
  g_byte_array_append(b, t, n);
}

static void pack_key(GByteArray *b, const char *key) {
  guint8 h = (guint8)(0xa0 | strlen(key));
  g_byte_array_append(b, &h, 1);
  g_byte_array_append(b, (const guint8 *)key, strlen(key));
}

static void build_payload(GstFramecastStamps *s, GByteArray *b, gint64 seq, gint64 loop,
                          gboolean pts_unsigned, gint64 pts_ns, guint64 upts, guint64 wall) {
  if (s->json) {
    char tmp[160];
    int n;
    if (pts_unsigned)
      n = g_snprintf(tmp, sizeof tmp, "{\"seq\":%" G_GINT64_FORMAT ",\"loop\":%" G_GINT64_FORMAT
                     ",\"pts_ns\":%" G_GUINT64_FORMAT ",\"wallclock_ns\":%" G_GUINT64_FORMAT "}",
                     seq, loop, upts, wall);
    else
      n = g_snprintf(tmp, sizeof tmp, "{\"seq\":%" G_GINT64_FORMAT ",\"loop\":%" G_GINT64_FORMAT
                     ",\"pts_ns\":%" G_GINT64_FORMAT ",\"wallclock_ns\":%" G_GUINT64_FORMAT "}",
                     seq, loop, pts_ns, wall);
    g_byte_array_append(b, (const guint8 *)tmp, n);
    return;
  }
  guint8 map4 = 0x84;
  g_byte_array_append(b, &map4, 1);
  pack_key(b, "seq");
  pack_int(b, seq);
  pack_key(b, "loop");
  pack_int(b, loop);
  pack_key(b, "pts_ns");
  if (pts_unsigned) pack_uint(b, upts); else pack_int(b, pts_ns);
  pack_key(b, "wallclock_ns");
  pack_uint(b, wall);
}

/* -- SEI NAL (framecast.sei.build_sei_nal) ------------------------------------------------- */

static void ff_coded(GByteArray *b, gsize v) {
  guint8 ff = 0xff, r;
  for (; v >= 255; v -= 255) g_byte_array_append(b, &ff, 1);
  r = (guint8)v;
  g_byte_array_append(b, &r, 1);
}

typedef struct { const guint8 *uuid, *data; gsize size; } Message;

/* start code / length prefix + NAL header + escaped sei_message()s + rbsp trailing bits */
static GByteArray *build_sei(GstFramecastStamps *s, const Message *m, guint n) {
  GByteArray *rbsp = g_byte_array_sized_new(128), *out;
  guint8 five = 5, stop = 0x80;
  for (guint k = 0; k < n; k++) {
    g_byte_array_append(rbsp, &five, 1);
    ff_coded(rbsp, 16 + m[k].size);
    g_byte_array_append(rbsp, m[k].uuid, 16);
    if (m[k].size) g_byte_array_append(rbsp, m[k].data, m[k].size);
  }
  g_byte_array_append(rbsp, &stop, 1);
  out = g_byte_array_sized_new(rbsp->len + rbsp->len / 2 + 8);
  g_byte_array_set_size(out, s->length_size ? s->length_size : 4);
  if (s->h265) {
    guint8 h[2] = {0x4e, 0x01};
    g_byte_array_append(out, h, 2);
  } else {
    guint8 h = 0x06;
    g_byte_array_append(out, &h, 1);
  }
  int zeros = 0;
  for (guint i = 0; i < rbsp->len; i++) { /* 7.4.1: 00 00 then 00..03 gets an 03 between */
    guint8 c = rbsp->data[i], three = 3;
    if (zeros >= 2 && c <= 3) { g_byte_array_append(out, &three, 1); zeros = 0; }
    g_byte_array_append(out, &c, 1);
    zeros = c == 0 ? zeros + 1 : 0;
  }
  if (zeros >= 2) { /* 00 00 at the very end (the regex's \Z): never, the NAL ends in 0x80 */
    guint8 three = 3;
    g_byte_array_append(out, &three, 1);
  }
  g_byte_array_unref(rbsp);
  gsize nal = out->len - (s->length_size ? s->length_size : 4);
  if (s->length_size) {
    for (int k = 0; k < s->length_size; k++)
      out->data[k] = (guint8)(nal >> (8 * (s->length_size - 1 - k)));
  } else {
    out->data[0] = out->data[1] = out->data[2] = 0;
    out->data[3] = 1;
  }
  return out;
}

/* -- splice point (framecast.sei.find_first_vcl_offset) ------------------------------------ */

static gboolean is_vcl_type(int t, gboolean h265) { return h265 ? t < 32 : (t >= 1 && t <= 5); }

static const guint8 *find_sc(const guint8 *p, const guint8 *end) {
  while (end - p >= 3) {
    const guint8 *z = memchr(p, 0, end - p - 2);
    if (!z) return NULL;
    if (z[1] == 0 && z[2] == 1) return z;
    p = z + 1;
  }
  return NULL;
}

/* offset of the first VCL NAL (its zero_byte included), -1 if none / malformed */
static gssize first_vcl_annexb(const guint8 *au, gsize n, gboolean h265) {
  const guint8 *end = au + n, *sc = find_sc(au, end);
  if (!sc) return -1;
  for (const guint8 *q = au; q < sc; q++)
    if (*q) return -1; /* stray bytes before the first start code */
  while (sc) {
    const guint8 *p = sc + 3;
    if (p >= end) break;
    guint8 b0 = p[0], b1 = p + 1 < end ? p[1] : 0;
    if (b0 == 0 && (b1 == 0 || !h265)) { sc = find_sc(p, end); continue; }
    if (h265 && p + 1 >= end) return -1;
    if (b0 & 0x80) return -1;
    if (h265 && !(b1 & 7)) return -1;
    int t = h265 ? (b0 >> 1) & 0x3f : b0 & 0x1f;
    if (is_vcl_type(t, h265)) return (sc > au && sc[-1] == 0) ? sc - 1 - au : sc - au;
    sc = find_sc(p + 1, end);
  }
  return -1;
}

/* length-prefixed: hop from header to header, reading only those bytes (no map of the AU) */
static gssize first_vcl_prefixed(GstBuffer *buf, gsize n, gboolean h265, int ls) {
  gsize pos = 0, hdr_len = ls + (h265 ? 2 : 1);
  guint8 hdr[6];
  while (pos + hdr_len <= n) {
    gst_buffer_extract(buf, pos, hdr, hdr_len);
    gsize len = 0;
    for (int k = 0; k < ls; k++) len = (len << 8) | hdr[k];
    guint8 b0 = hdr[ls], b1 = h265 ? hdr[ls + 1] : 0;
    if (b0 & 0x80 || (h265 && !(b1 & 7))) return -1; /* forbidden_zero_bit, temporal id 0 */
    int t = h265 ? (b0 >> 1) & 0x3f : b0 & 0x1f;
    if (is_vcl_type(t, h265)) return (gssize)pos;
    pos += ls + len;
  }
  return -1;
}

static void warn(GstFramecastStamps *s, const char *what, GstClockTime pts) {
  s->warnings++;
  if (s->warnings <= MAX_WARNINGS)
    GST_ELEMENT_WARNING(s, STREAM, FORMAT, ("access unit at pts %" G_GUINT64_FORMAT
                        " left as is: %s", pts, what), (NULL));
}

/* -- chain ------------------------------------------------------------------------------- */

static GstFlowReturn stamps_chain(GstPad *pad, GstObject *parent, GstBuffer *buf) {
  GstFramecastStamps *s = (GstFramecastStamps *)parent;
  (void)pad;
  s->buffers++;
  if (!s->have_codec) return gst_pad_push(s->srcpad, buf);
  GstClockTime pts = GST_BUFFER_PTS(buf);
  Message msgs[16];
  guint n = 0;
  GByteArray *payload = NULL;
  if (GST_CLOCK_TIME_IS_VALID(pts)) {
    guint64 rt = gst_segment_to_running_time(&s->segment, GST_FORMAT_TIME, pts);
    gint64 running = GST_CLOCK_TIME_IS_VALID(rt) ? (gint64)rt : -1;
    gint64 index, loop, seq;
    locate(s, (gint64)pts, running, (gint64)s->segment.base, &index, &loop, &seq);
    guint64 wall = s->fixed_wallclock;
    if (!wall) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      wall = (guint64)ts.tv_sec * 1000000000u + (guint64)ts.tv_nsec;
    }
    payload = g_byte_array_sized_new(64);
    if (running >= 0)
      build_payload(s, payload, seq, loop, FALSE, running, 0, wall);
    else
      build_payload(s, payload, seq, loop, TRUE, 0, pts, wall);
    msgs[n++] = (Message){FRAMECAST_UUID, payload->data, payload->len};
  }
  GstMapInfo map = GST_MAP_INFO_INIT;
  gboolean mapped = FALSE;
  gpointer state = NULL;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered(
              buf, &state, GST_VIDEO_SEI_USER_DATA_UNREGISTERED_META_API_TYPE)) && n < 16) {
    GstVideoSEIUserDataUnregisteredMeta *um = (GstVideoSEIUserDataUnregisteredMeta *)meta;
    if (!mapped) mapped = gst_buffer_map(buf, &map, GST_MAP_READ);
    if (!mapped) break;
    /* already in the AU (h264parse/h265parse attach the SEI they parsed)? Looked up as raw
     * uuid+data bytes: exact unless the message needed emulation prevention bytes. */
    gsize need = 16 + um->size;
    guint8 *raw = g_malloc(need);
    memcpy(raw, um->uuid, 16);
    if (um->size) memcpy(raw + 16, um->data, um->size);
    gboolean present = memmem(map.data, map.size, raw, need) != NULL;
    g_free(raw);
    if (!present) msgs[n++] = (Message){um->uuid, um->data, um->size};
  }
  if (!n) {
    if (mapped) gst_buffer_unmap(buf, &map);
    if (payload) g_byte_array_unref(payload);
    return gst_pad_push(s->srcpad, buf);
  }
  gsize size = gst_buffer_get_size(buf);
  gssize offset;
  if (s->length_size) {
    offset = first_vcl_prefixed(buf, size, s->h265, s->length_size);
  } else {
    /* Annex B: the parameter sets come first; a prefix is enough unless it has no slice */
    guint8 head[4096];
    gsize hn = gst_buffer_extract(buf, 0, head, MIN(size, sizeof head));
    offset = mapped ? first_vcl_annexb(map.data, map.size, s->h265)
                    : first_vcl_annexb(head, hn, s->h265);
    if (offset < 0 && !mapped && hn < size) {
      mapped = gst_buffer_map(buf, &map, GST_MAP_READ);
      offset = mapped ? first_vcl_annexb(map.data, map.size, s->h265) : -1;
    }
  }
  GByteArray *nal = offset >= 0 ? build_sei(s, msgs, n) : NULL;
  if (mapped) gst_buffer_unmap(buf, &map);
  if (payload) g_byte_array_unref(payload);
  if (nal && s->length_size && s->length_size < 4 &&
      nal->len - s->length_size >= (1u << (8 * s->length_size))) {
    g_byte_array_unref(nal);
    nal = NULL;
  }
  if (!nal) {
    warn(s, "no VCL NAL unit found (or the SEI does not fit the NAL length size)", pts);
    return gst_pad_push(s->srcpad, buf);
  }
  /* splice by sharing the input's memory around the new NAL: no copy of the slice data */
  GstBuffer *out = gst_buffer_new();
  gst_buffer_copy_into(out, buf, GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_TIMESTAMPS |
                       GST_BUFFER_COPY_META, 0, size);
  if (offset) gst_buffer_copy_into(out, buf, GST_BUFFER_COPY_MEMORY, 0, offset);
  guint len = nal->len;
  guint8 *bytes = g_byte_array_free(nal, FALSE);
  gst_buffer_append_memory(out, gst_memory_new_wrapped(0, bytes, len, 0, len, bytes, g_free));
  gst_buffer_copy_into(out, buf, GST_BUFFER_COPY_MEMORY, offset, size - offset);
  gst_buffer_unref(buf);
  s->frames++;
  return gst_pad_push(s->srcpad, out);
}

/* -- events ------------------------------------------------------------------------------ */

static void set_caps(GstFramecastStamps *s, GstCaps *caps) {
  GstStructure *st = gst_caps_get_structure(caps, 0);
  s->h265 = gst_structure_has_name(st, "video/x-h265");
  s->have_codec = TRUE;
  s->length_size = 0;
  const gchar *fmt = gst_structure_get_string(st, "stream-format");
  if (fmt && strcmp(fmt, "byte-stream") != 0) {
    s->length_size = 4;
    const GValue *v = gst_structure_get_value(st, "codec_data");
    if (v && G_VALUE_HOLDS(v, GST_TYPE_BUFFER)) {
      GstBuffer *cd = gst_value_get_buffer(v);
      guint8 b[23];
      gsize idx = s->h265 ? 21 : 4, got = gst_buffer_extract(cd, 0, b, sizeof b);
      if (got > idx && b[0] == 1 && (b[idx] & 3) != 2) s->length_size = (b[idx] & 3) + 1;
    }
  }
  gint num, den;
  if (gst_structure_get_fraction(st, "framerate", &num, &den) && num > 0 && den > 0 &&
      !(s->n_pts && s->period_ns > 0) && !s->counter)
    s->frame_ns = (gint64)gst_util_uint64_scale(den, GST_SECOND, num);
}

static gboolean stamps_sink_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  GstFramecastStamps *s = (GstFramecastStamps *)parent;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps(event, &caps);
      set_caps(s, caps);
      break;
    }
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment(event, &s->segment);
      break;
    case GST_EVENT_FLUSH_STOP:
      s->have_first_rt = FALSE;
      s->count = 0;
      break;
    default:
      break;
  }
  return gst_pad_event_default(pad, parent, event);
}

/* -- GObject ----------------------------------------------------------------------------- */

static void stamps_set_property(GObject *obj, guint id, const GValue *v, GParamSpec *ps) {
  GstFramecastStamps *s = (GstFramecastStamps *)obj;
  switch (id) {
    case PROP_VIDEO_PTS: {
      GBytes *b = g_value_get_boxed(v);
      g_free(s->video_pts);
      s->video_pts = NULL;
      s->n_pts = 0;
      if (b) {
        gsize size;
        const void *d = g_bytes_get_data(b, &size);
        s->n_pts = size / sizeof(gint64);
        s->video_pts = g_memdup2(d, s->n_pts * sizeof(gint64));
      }
      break;
    }
    case PROP_PERIOD_NS: s->period_ns = (gint64)g_value_get_uint64(v); break;
    case PROP_FRAME_NS: s->frame_ns = (gint64)g_value_get_uint64(v); break;
    case PROP_COUNTER: s->counter = g_value_get_boolean(v); break;
    case PROP_FORMAT: s->json = g_strcmp0(g_value_get_string(v), "json") == 0; break;
    case PROP_FIXED_WALLCLOCK: s->fixed_wallclock = g_value_get_uint64(v); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
  }
}

static void stamps_get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps) {
  GstFramecastStamps *s = (GstFramecastStamps *)obj;
  switch (id) {
    case PROP_VIDEO_PTS:
      g_value_take_boxed(v, g_bytes_new(s->video_pts, s->n_pts * sizeof(gint64)));
      break;
    case PROP_PERIOD_NS: g_value_set_uint64(v, (guint64)s->period_ns); break;
    case PROP_FRAME_NS: g_value_set_uint64(v, (guint64)s->frame_ns); break;
    case PROP_COUNTER: g_value_set_boolean(v, s->counter); break;
    case PROP_FORMAT: g_value_set_string(v, s->json ? "json" : "msgpack"); break;
    case PROP_FIXED_WALLCLOCK: g_value_set_uint64(v, s->fixed_wallclock); break;
    case PROP_FRAMES: g_value_set_uint64(v, s->frames); break;
    case PROP_BUFFERS: g_value_set_uint64(v, s->buffers); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
  }
}

static void stamps_finalize(GObject *obj) {
  g_free(((GstFramecastStamps *)obj)->video_pts);
  G_OBJECT_CLASS(gst_framecast_stamps_parent_class)->finalize(obj);
}

static void gst_framecast_stamps_class_init(GstFramecastStampsClass *klass) {
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GstElementClass *ec = GST_ELEMENT_CLASS(klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;
  oc->set_property = stamps_set_property;
  oc->get_property = stamps_get_property;
  oc->finalize = stamps_finalize;
  g_object_class_install_property(oc, PROP_VIDEO_PTS, g_param_spec_boxed(
      "video-pts", "Video PTS", "Sorted presented PTS of one loop (native int64 array)",
      G_TYPE_BYTES, rw));
  g_object_class_install_property(oc, PROP_PERIOD_NS, g_param_spec_uint64(
      "period-ns", "Loop period", "Loop period in ns (0 = live indexing)", 0, G_MAXINT64, 0, rw));
  g_object_class_install_property(oc, PROP_FRAME_NS, g_param_spec_uint64(
      "frame-ns", "Frame duration", "Live indexing: ns per frame (0 = from caps)", 0,
      G_MAXINT64, 0, rw));
  g_object_class_install_property(oc, PROP_COUNTER, g_param_spec_boolean(
      "counter", "Counter", "Live indexing by arrival order", FALSE, rw));
  g_object_class_install_property(oc, PROP_FORMAT, g_param_spec_string(
      "format", "Format", "Payload format: msgpack or json", "msgpack", rw));
  g_object_class_install_property(oc, PROP_FIXED_WALLCLOCK, g_param_spec_uint64(
      "fixed-wallclock", "Fixed wallclock", "Tests: wallclock_ns to write (0 = now)", 0,
      G_MAXUINT64, 0, rw));
  g_object_class_install_property(oc, PROP_FRAMES, g_param_spec_uint64(
      "frames", "Frames", "Access units given SEI", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property(oc, PROP_BUFFERS, g_param_spec_uint64(
      "buffers", "Buffers", "Access units seen", 0, G_MAXUINT64, 0, ro));
  gst_element_class_add_static_pad_template(ec, &sink_template);
  gst_element_class_add_static_pad_template(ec, &src_template);
  gst_element_class_set_static_metadata(ec, "framecast SEI stamps (compiled)",
      "Filter/Video/Metadata", "Inserts framecast stamps as H.264/H.265 SEI before the first "
      "slice, keyed by presented PTS", "framecast");
}

static void gst_framecast_stamps_init(GstFramecastStamps *s) {
  s->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  s->srcpad = gst_pad_new_from_static_template(&src_template, "src");
  gst_pad_set_chain_function(s->sinkpad, stamps_chain);
  gst_pad_set_event_function(s->sinkpad, stamps_sink_event);
  GST_PAD_SET_PROXY_CAPS(s->sinkpad);
  GST_PAD_SET_PROXY_CAPS(s->srcpad);
  gst_element_add_pad(GST_ELEMENT(s), s->sinkpad);
  gst_element_add_pad(GST_ELEMENT(s), s->srcpad);
  gst_segment_init(&s->segment, GST_FORMAT_TIME);
}

static gboolean plugin_init(GstPlugin *plugin) {
  GST_DEBUG_CATEGORY_INIT(stamps_debug, "framecaststamps", 0, "framecast SEI stamps");
  return gst_element_register(plugin, "framecaststamps", GST_RANK_NONE,
                              gst_framecast_stamps_get_type());
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, framecaststamps,
                  "framecast SEI stamps (compiled hot path)", plugin_init, "0.1", "LGPL",
                  "framecast", "https://example.invalid/framecast")
