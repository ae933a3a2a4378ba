package schemagen

import (
	"fmt"

	"github.com/packer-stdio/packer/protocol"
	"github.com/packer-stdio/packer/schema"
)

type obj = map[string]any

// envelopeDefs are the JSON-RPC 2.0 envelopes as this protocol restricts
// them: no batches, ids that are strings or integers from 0 to 2^63-1, and
// no members besides those of JSON-RPC 2.0.
func envelopeDefs() obj {
	return obj{
		"id": obj{
			"description": "A request id: a string, or an integer from 0 to 2^63-1 written in digits only (SPEC.md §4.1 also refuses -0, 1.0 and 1e3, which this schema cannot tell from 0, 1 and 1000). Answers echo it with the same JSON type and value.",
			"oneOf": []any{
				obj{"type": "string"},
				obj{"type": "integer", "minimum": 0, "maximum": 9223372036854775807},
			},
		},
		"request": obj{
			"description": "A request: the receiver answers it with a response carrying the same id.",
			"type":        "object",
			"required":    []any{"jsonrpc", "id", "method"},
			"properties": obj{
				"jsonrpc": obj{"const": "2.0"},
				"id":      obj{"$ref": "#/$defs/id"},
				"method":  obj{"type": "string"},
				"params":  obj{"type": []any{"object", "array"}, "description": "This protocol's methods take an object, or no params member at all."},
			},
			"additionalProperties": false,
		},
		"notification": obj{
			"description": "A notification: never answered.",
			"type":        "object",
			"required":    []any{"jsonrpc", "method"},
			"properties": obj{
				"jsonrpc": obj{"const": "2.0"},
				"method":  obj{"type": "string"},
				"params":  obj{"type": []any{"object", "array"}},
			},
			"additionalProperties": false,
		},
		"error": obj{
			"description": "A JSON-RPC 2.0 error object. See the error table in SPEC.md.",
			"type":        "object",
			"required":    []any{"code", "message"},
			"properties": obj{
				"code":    obj{"type": "integer"},
				"message": obj{"type": "string"},
				"data":    obj{"description": "Structured detail; its shape depends on the code."},
			},
			"additionalProperties": false,
		},
		"response": obj{
			"description": "The answer to a request: a result, or an error. An error answer to a line whose id could not be read has a null id.",
			"oneOf": []any{
				obj{
					"type":     "object",
					"required": []any{"jsonrpc", "id", "result"},
					"properties": obj{
						"jsonrpc": obj{"const": "2.0"},
						"id":      obj{"$ref": "#/$defs/id"},
						"result":  obj{},
					},
					"additionalProperties": false,
				},
				obj{
					"type":     "object",
					"required": []any{"jsonrpc", "id", "error"},
					"properties": obj{
						"jsonrpc": obj{"const": "2.0"},
						"id": obj{
							"description": "The id of the request, echoed verbatim even when it was refused (a negative or fractional number), or null when it could not be read.",
							"type":        []any{"string", "number", "null"},
						},
						"error": obj{"$ref": "#/$defs/error"},
					},
					"additionalProperties": false,
				},
			},
		},
	}
}

// envelopes returns the envelope files.
func envelopes() map[string]any {
	file := func(name, title, description string, body obj) obj {
		s := obj{
			"$schema":     Draft,
			"$id":         schema.BaseURI + name,
			"title":       title,
			"description": description + fmt.Sprintf(" One message per line, at most %d bytes before the handshake. See SPEC.md.", protocol.DefaultMaxMessageSize),
			"$defs":       envelopeDefs(),
		}
		for k, v := range body {
			s[k] = v
		}
		return s
	}
	return map[string]any{
		schema.EnvelopeRequest: file(schema.EnvelopeRequest, "JSON-RPC 2.0 request",
			"A request of the packer plugin protocol, params not checked (see METHOD.params.json).",
			obj{"$ref": "#/$defs/request"}),
		schema.EnvelopeNotification: file(schema.EnvelopeNotification, "JSON-RPC 2.0 notification",
			"A notification of the packer plugin protocol, params not checked (see METHOD.params.json).",
			obj{"$ref": "#/$defs/notification"}),
		schema.EnvelopeResponse: file(schema.EnvelopeResponse, "JSON-RPC 2.0 response",
			"A response of the packer plugin protocol, result and error data not checked (see METHOD.result.json and error-data.*.json).",
			obj{"$ref": "#/$defs/response"}),
		schema.EnvelopeMessage: file(schema.EnvelopeMessage, "JSON-RPC 2.0 message",
			"Any one line of the packer plugin protocol: a request, a notification or a response. Batches are not allowed.",
			obj{"oneOf": []any{obj{"$ref": "#/$defs/request"}, obj{"$ref": "#/$defs/notification"}, obj{"$ref": "#/$defs/response"}}}),
	}
}
