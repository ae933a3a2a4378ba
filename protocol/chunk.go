package protocol

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"

	"github.com/segmentio/asm/base64"
)

// The canonical spelling of a stream/data notification (SPEC §7.5.2):
//
//	{"jsonrpc":"2.0","method":"stream/data","params":{"source":"H","data":"B64"}}
//	{"jsonrpc":"2.0","method":"stream/data","params":{"sink":"H","data":"B64"}}
//
// with a handle H of printable ASCII other than '"' and '\', and the base64
// payload last. The line reader recognises this prefix and hands the line to
// the connection's stream code without any JSON parsing; a chunk spelt any
// other valid way takes the ordinary path through the jsonrpc2 connection.
var (
	dataPrefixSource = []byte(`{"jsonrpc":"2.0","method":"stream/data","params":{"source":"`)
	dataPrefixSink   = []byte(`{"jsonrpc":"2.0","method":"stream/data","params":{"sink":"`)
	dataMid          = []byte(`","data":"`)
	dataSuffix       = []byte(`"}}`)
)

// b64 is the base64 codec of stream payloads: standard alphabet, padded.
// segmentio/asm's SIMD codec (AVX2 on amd64, NEON on arm64, a portable
// fallback elsewhere) encodes and decodes a 256 KiB chunk 3 to 30 times
// faster than encoding/base64 here, which once the JSON scans are gone is
// what bounds a stream's throughput.
var b64 = base64.StdEncoding

// chunkPool holds the buffers incoming chunks are decoded into, so that a
// stream allocates nothing per chunk. Each holds the decoding of the
// longest payload accepted ([maxPayload] bytes of base64, which may decode
// to 2 bytes more than [MaxChunkSize] before the size is checked).
var chunkPool = sync.Pool{New: func() any { b := make([]byte, b64.DecodedLen(maxPayload)); return &b }}

func getChunk() *[]byte  { return chunkPool.Get().(*[]byte) }
func putChunk(b *[]byte) { chunkPool.Put(b) }

// simpleHandle reports whether h can be written between quotes as is: the
// handles of the canonical form.
func simpleHandle(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for _, c := range h {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendHandle appends h as the inside of a JSON string.
func appendHandle(b []byte, h string) []byte {
	if simpleHandle([]byte(h)) {
		return append(b, h...)
	}
	q, _ := json.Marshal(h) // a string always encodes
	return append(b, q[1:len(q)-1]...)
}

// appendDataHead appends the start of a stream/data line up to and
// including the quote that opens the payload.
func appendDataHead(b []byte, sink bool, h string) []byte {
	if sink {
		b = append(b, dataPrefixSink...)
	} else {
		b = append(b, dataPrefixSource...)
	}
	b = appendHandle(b, h)
	return append(b, dataMid...)
}

// appendData appends a whole stream/data line carrying data, without the
// newline. The base64 is encoded straight into b.
func appendData(b []byte, sink bool, h string, data []byte) []byte {
	b = appendDataHead(b, sink, h)
	n := b64.EncodedLen(len(data))
	b = slices.Grow(b, n+len(dataSuffix)+1)
	b64.Encode(b[len(b):len(b)+n], data)
	b = b[:len(b)+n]
	return append(b, dataSuffix...)
}

// appendDataRaw appends a stream/data line whose payload is already base64,
// as a relay forwards it.
func appendDataRaw(b []byte, sink bool, h string, payload []byte) []byte {
	b = appendDataHead(b, sink, h)
	b = append(b, payload...)
	return append(b, dataSuffix...)
}

// parseData recognises a stream/data line in the canonical form. It returns
// the kind of stream, its handle and the payload, still base64, all slices
// of line. ok is false when line is not in the canonical form (it may still
// be a valid message: it then takes the ordinary path). The payload is not
// checked here.
func parseData(line []byte) (sink bool, handle, payload []byte, ok bool) {
	var rest []byte
	switch {
	case bytes.HasPrefix(line, dataPrefixSource):
		rest = line[len(dataPrefixSource):]
	case bytes.HasPrefix(line, dataPrefixSink):
		sink, rest = true, line[len(dataPrefixSink):]
	default:
		return false, nil, nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i <= 0 || !simpleHandle(rest[:i]) {
		return false, nil, nil, false
	}
	handle, rest = rest[:i], rest[i:]
	if !bytes.HasPrefix(rest, dataMid) || !bytes.HasSuffix(rest, dataSuffix) || len(rest) < len(dataMid)+len(dataSuffix) {
		return false, nil, nil, false
	}
	return sink, handle, rest[len(dataMid) : len(rest)-len(dataSuffix)], true
}

// decodedLen is how many bytes the padded base64 payload, whose length is
// a multiple of 4, decodes to when the decoder skips none of it (it skips
// "\r" and "\n"; a payload it decoded without error that is not a
// multiple of 4 long had some skipped).
func decodedLen(payload []byte) int {
	n := len(payload) / 4 * 3
	for i := len(payload) - 1; i >= 0 && i >= len(payload)-2 && payload[i] == '='; i-- {
		n--
	}
	return n
}

// maxPayload is the length of the base64 of MaxChunkSize bytes.
var maxPayload = b64.EncodedLen(MaxChunkSize)

// plainBase64 reports whether payload consists of base64 alphabet bytes and
// padding only: no escapes, quotes, or the "\r" and "\n" that the decoder
// would skip silently.
func plainBase64(payload []byte) bool {
	for _, c := range payload {
		if !b64Alphabet[c] {
			return false
		}
	}
	return true
}

var b64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		t[c] = true
	}
	return t
}()

// notification is an outgoing notification of this package's own, encoded
// with its members in the order every message uses: jsonrpc, method, params.
type notification struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}
