package hcl2

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// LeftOut names Packer's HCL2 functions this packer does not have, and
// why; templates calling them get "call to unknown function".
var LeftOut = map[string]string{
	"aws_secretsmanager":     "reads AWS over the network",
	"aws_secretsmanager_raw": "reads AWS over the network",
	"vault":                  "reads Vault over the network",
	"bcrypt":                 "not implemented",
	"rsadecrypt":             "not implemented",
	"cidrhost":               "not implemented",
	"cidrnetmask":            "not implemented",
	"cidrsubnet":             "not implemented",
	"cidrsubnets":            "not implemented",
	"yamldecode":             "not implemented",
	"yamlencode":             "not implemented",
	"legacy_strftime":        "not implemented",
	"base64gzip":             "not implemented",
	"textdecodebase64":       "not implemented",
	"textencodebase64":       "not implemented",
	"transpose":              "not implemented",
}

// functions returns the functions templates may call: go-cty's standard
// library under Packer's names, and Packer's own additions. dir is the
// directory relative paths are read from (path.root); now is the run's
// timestamp.
func functions(dir string, now time.Time) map[string]function.Function {
	fs := map[string]function.Function{
		"abs":             stdlib.AbsoluteFunc,
		"ceil":            stdlib.CeilFunc,
		"chomp":           stdlib.ChompFunc,
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"csvdecode":       stdlib.CSVDecodeFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"floor":           stdlib.FloorFunc,
		"format":          stdlib.FormatFunc,
		"formatdate":      stdlib.FormatDateFunc,
		"formatlist":      stdlib.FormatListFunc,
		"indent":          stdlib.IndentFunc,
		"index":           stdlib.IndexFunc,
		"join":            stdlib.JoinFunc,
		"jsondecode":      stdlib.JSONDecodeFunc,
		"jsonencode":      stdlib.JSONEncodeFunc,
		"keys":            stdlib.KeysFunc,
		"length":          lengthFunc,
		"log":             stdlib.LogFunc,
		"lookup":          stdlib.LookupFunc,
		"lower":           stdlib.LowerFunc,
		"max":             stdlib.MaxFunc,
		"merge":           stdlib.MergeFunc,
		"min":             stdlib.MinFunc,
		"parseint":        stdlib.ParseIntFunc,
		"pow":             stdlib.PowFunc,
		"range":           stdlib.RangeFunc,
		"regex":           stdlib.RegexFunc,
		"regexall":        stdlib.RegexAllFunc,
		"regex_replace":   stdlib.RegexReplaceFunc,
		"replace":         stdlib.ReplaceFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"signum":          stdlib.SignumFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"split":           stdlib.SplitFunc,
		"strlen":          stdlib.StrlenFunc,
		"strrev":          stdlib.ReverseFunc,
		"substr":          stdlib.SubstrFunc,
		"timeadd":         stdlib.TimeAddFunc,
		"title":           stdlib.TitleFunc,
		"trim":            stdlib.TrimFunc,
		"trimprefix":      stdlib.TrimPrefixFunc,
		"trimspace":       stdlib.TrimSpaceFunc,
		"trimsuffix":      stdlib.TrimSuffixFunc,
		"upper":           stdlib.UpperFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,

		"try": tryfunc.TryFunc,
		"can": tryfunc.CanFunc,

		"tobool":   makeToFunc(cty.Bool),
		"tonumber": makeToFunc(cty.Number),
		"tostring": makeToFunc(cty.String),
		"tolist":   makeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset":    makeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tomap":    makeToFunc(cty.Map(cty.DynamicPseudoType)),

		"startswith":  stringPredicate(strings.HasPrefix),
		"endswith":    stringPredicate(strings.HasSuffix),
		"strcontains": stringPredicate(strings.Contains),
		"sum":         sumFunc,
		"alltrue":     boolsFunc(true),
		"anytrue":     boolsFunc(false),
		"urlencode":   stringFunc(url.QueryEscape),

		"base64encode": stringFunc(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }),
		"base64decode": stringErrFunc(func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(s)
			return string(b), err
		}),
		"md5":    hashFunc(md5.New),
		"sha1":   hashFunc(sha1.New),
		"sha256": hashFunc(sha256.New),
		"sha512": hashFunc(sha512.New),

		"timestamp": function.New(&function.Spec{
			Type: function.StaticReturnType(cty.String),
			Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
				return cty.StringVal(now.UTC().Format(time.RFC3339)), nil
			},
		}),
		"legacy_isotime": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "format", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return cty.StringVal(now.UTC().Format(args[0].AsString())), nil
			},
		}),
		"uuidv4": function.New(&function.Spec{
			Type: function.StaticReturnType(cty.String),
			Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
				var b [16]byte
				rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
				b[6] = b[6]&0x0f | 0x40
				b[8] = b[8]&0x3f | 0x80
				return cty.StringVal(formatUUID(b[:])), nil
			},
		}),
		"uuidv5": uuidv5Func,

		"abspath": stringErrFunc(func(p string) (string, error) { return filepath.Abs(resolve(dir, p)) }),
		"basename": stringFunc(func(p string) string {
			return filepath.Base(p)
		}),
		"dirname": stringFunc(filepath.Dir),
		"pathexpand": stringErrFunc(func(p string) (string, error) {
			if p != "~" && !strings.HasPrefix(p, "~/") {
				return p, nil
			}
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			return filepath.Join(home, p[1:]), nil
		}),
		"file": stringErrFunc(func(p string) (string, error) {
			b, err := os.ReadFile(resolve(dir, p))
			return string(b), err
		}),
		"fileexists": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}},
			Type:   function.StaticReturnType(cty.Bool),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				fi, err := os.Stat(resolve(dir, args[0].AsString()))
				if err != nil {
					if os.IsNotExist(err) {
						return cty.False, nil
					}
					return cty.NilVal, err
				}
				return cty.BoolVal(fi.Mode().IsRegular()), nil
			},
		}),
		"fileset": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "pattern", Type: cty.String}},
			Type:   function.StaticReturnType(cty.Set(cty.String)),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				base := resolve(dir, args[0].AsString())
				matches, err := filepath.Glob(filepath.Join(base, args[1].AsString()))
				if err != nil {
					return cty.NilVal, err
				}
				var vals []cty.Value
				for _, m := range matches {
					if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
						rel, _ := filepath.Rel(base, m)
						vals = append(vals, cty.StringVal(filepath.ToSlash(rel)))
					}
				}
				if len(vals) == 0 {
					return cty.SetValEmpty(cty.String), nil
				}
				return cty.SetVal(vals), nil
			},
		}),
	}
	fs["templatefile"] = templateFileFunc(dir, fs)
	return fs
}

// resolve makes a relative path relative to dir.
func resolve(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

func stringFunc(f func(string) string) function.Function {
	return stringErrFunc(func(s string) (string, error) { return f(s), nil })
}

func stringErrFunc(f func(string) (string, error)) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, err := f(args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(s), nil
		},
	})
}

func stringPredicate(f func(s, sub string) bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(f(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

func hashFunc(h func() hash.Hash) function.Function {
	return stringFunc(func(s string) string {
		sum := h()
		sum.Write([]byte(s))
		return hex.EncodeToString(sum.Sum(nil))
	})
}

func makeToFunc(want cty.Type) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowNull: true, AllowDynamicType: true}},
		Type: func(args []cty.Value) (cty.Type, error) {
			got := args[0].Type()
			if got.Equals(want) {
				return got, nil
			}
			conv := convert.GetConversionUnsafe(got, want)
			if conv == nil {
				return cty.NilType, function.NewArgErrorf(0, "cannot convert %s to %s", got.FriendlyName(), want.FriendlyNameForConstraint())
			}
			out, err := conv(cty.UnknownVal(got))
			if err != nil {
				return cty.NilType, function.NewArgError(0, err)
			}
			return out.Type(), nil
		},
		Impl: func(args []cty.Value, ret cty.Type) (cty.Value, error) {
			v, err := convert.Convert(args[0], ret)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return v, nil
		},
	})
}

var sumFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Number)}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		total := cty.Zero
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if v.IsNull() {
				return cty.NilVal, function.NewArgErrorf(0, "sum: null element")
			}
			total = total.Add(v)
		}
		return total, nil
	},
})

func boolsFunc(all bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			for it := args[0].ElementIterator(); it.Next(); {
				_, v := it.Element()
				if !v.IsNull() && v.True() != all {
					return cty.BoolVal(!all), nil
				}
			}
			return cty.BoolVal(all), nil
		},
	})
}

var uuidNamespaces = map[string]string{
	"dns":  "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
	"url":  "6ba7b811-9dad-11d1-80b4-00c04fd430c8",
	"oid":  "6ba7b812-9dad-11d1-80b4-00c04fd430c8",
	"x500": "6ba7b814-9dad-11d1-80b4-00c04fd430c8",
}

var uuidv5Func = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "namespace", Type: cty.String}, {Name: "name", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		ns := args[0].AsString()
		if s, ok := uuidNamespaces[ns]; ok {
			ns = s
		}
		nsb, err := hex.DecodeString(strings.ReplaceAll(ns, "-", ""))
		if err != nil || len(nsb) != 16 {
			return cty.NilVal, function.NewArgErrorf(0, "namespace %q is neither dns, url, oid, x500 nor a UUID", args[0].AsString())
		}
		h := sha1.New()
		h.Write(nsb)
		h.Write([]byte(args[1].AsString()))
		b := h.Sum(nil)[:16]
		b[6] = b[6]&0x0f | 0x50
		b[8] = b[8]&0x3f | 0x80
		return cty.StringVal(formatUUID(b)), nil
	},
})

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// templateFileFunc renders a file as an HCL template with the given
// variables, as Packer's templatefile does.
func templateFileFunc(dir string, fs map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := resolve(dir, args[0].AsString())
			src, err := os.ReadFile(p)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			expr, diags := hclsyntax.ParseTemplate(src, p, hcl.Pos{Line: 1, Column: 1, Byte: 0})
			if diags.HasErrors() {
				return cty.NilVal, function.NewArgError(0, diags)
			}
			vars := args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, function.NewArgErrorf(1, "vars must be an object or a map")
			}
			ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: map[string]function.Function{}}
			for it := vars.ElementIterator(); it.Next(); {
				k, v := it.Element()
				ctx.Variables[k.AsString()] = v
			}
			for name, f := range fs {
				if name != "templatefile" {
					ctx.Functions[name] = f
				}
			}
			for _, t := range expr.Variables() {
				if _, ok := ctx.Variables[t.RootName()]; !ok {
					return cty.NilVal, function.NewArgErrorf(1, "vars has no value for %q used in %s", t.RootName(), p)
				}
			}
			v, diags := expr.Value(ctx)
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			v, err = convert.Convert(v, cty.String)
			if err != nil {
				return cty.NilVal, err
			}
			return v, nil
		},
	})
}

// lengthFunc is the length of a string (in characters), a collection or a
// structure, as Packer's length.
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})
