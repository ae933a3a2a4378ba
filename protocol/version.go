package protocol

// Version is the newest protocol version this package speaks.
const Version = 2

// VersionFlowStreams is the first protocol version whose byte streams are
// pushed as stream/data notifications under credit-based flow control
// (SPEC §7.5.2) instead of being pulled with stream/read and stream/write.
const VersionFlowStreams = 2

// SupportedVersions lists every protocol version this package speaks,
// newest first. A host offers these in [InitializeParams.ProtocolVersions];
// a plugin picks one of them.
var SupportedVersions = []int{2, 1}

// EnvMagicCookie is the environment variable a host sets when it launches a
// plugin, with the value [MagicCookieValue]. A plugin that does not find it
// was run by hand: it must say so on stderr and exit non-zero instead of
// waiting for protocol messages on its stdin.
const EnvMagicCookie = "PACKER_PLUGIN_MAGIC_COOKIE"

// MagicCookieValue is the value of [EnvMagicCookie]. It is not a secret; it
// only tells a plugin that its stdin and stdout belong to a host.
const MagicCookieValue = "d7a0b3c1e6f54c2a9b8e1f0a3c5d7e9f-stdio-jsonrpc"

// DefaultMaxMessageSize is the size in bytes, newline excluded, of the
// largest line either side accepts before the handshake has told it the
// peer's limit, and the limit this package uses when none is configured.
const DefaultMaxMessageSize = 4 << 20

// MinMaxMessageSize is the smallest limit a side may declare in the
// handshake. It leaves room for a stream chunk of [MaxChunkSize] bytes.
const MinMaxMessageSize = 1 << 20

// MaxChunkSize is the largest number of bytes one stream/read result or
// stream/write request carries, before base64 encoding.
const MaxChunkSize = 256 << 10

// DefaultStreamWindow is the window a receiver of a stream grants when none
// is configured: how many bytes may be in transit or buffered, unread, per
// stream (protocol version 2).
const DefaultStreamWindow = 1 << 20

// InitialSinkWindow is the credit a writer of a sink has before the sink's
// offerer granted any (protocol version 2): the writer may send this many
// bytes at once, and the offerer grants more as it consumes them.
const InitialSinkWindow = MaxChunkSize
