package template_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packer-stdio/packer/internal/template"
)

func TestMask(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
		reason  string
	}{
		{name: "none", secrets: nil, in: "pass=hunter2", want: "pass=hunter2"},
		{name: "empty ignored", secrets: []string{""}, in: "abc", want: "abc", reason: "an empty secret would match everywhere"},
		{name: "every occurrence", secrets: []string{"hunter2"}, in: "hunter2 and hunter2", want: "<sensitive> and <sensitive>"},
		{name: "longest first", secrets: []string{"pass", "password123"}, in: "password123 pass", want: "<sensitive> <sensitive>",
			reason: "a shorter secret inside a longer one must not leave part of the longer one visible"},
		{name: "longest first regardless of order", secrets: []string{"password123", "pass"}, in: "password123", want: "<sensitive>"},
		{name: "short secret only as a word", secrets: []string{"x"}, in: "xyx x x=1 (x)", want: "xyx <sensitive> <sensitive>=1 (<sensitive>)",
			reason: "a secret under ShortSecret bytes would otherwise hide that letter in all output"},
		{name: "short secret with punctuation ends", secrets: []string{"!a"}, in: "b!a !ab", want: "b<sensitive> !ab",
			reason: "only an end that is a word character needs a word boundary"},
		{name: "short secret in other scripts", secrets: []string{"pw"}, in: "épw pw", want: "épw <sensitive>"},
		{name: "four bytes everywhere", secrets: []string{"abcd"}, in: "xabcdx", want: "x<sensitive>x"},
		{name: "upper and lower case", secrets: []string{"Hunter2-Pw"}, in: "HUNTER2-PW hunter2-pw Hunter2-Pw", want: "<sensitive> <sensitive> <sensitive>",
			reason: "templates derive these with the upper and lower functions"},
		{name: "title case", secrets: []string{"hunter two"}, in: "Hunter Two", want: "<sensitive>"},
		{name: "derived forms of a short secret", secrets: []string{"ab"}, in: "AB ab Ab abc", want: "<sensitive> <sensitive> <sensitive> abc"},
		{name: "duplicates", secrets: []string{"s3", "s3"}, in: "s3", want: "<sensitive>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := template.NewMasker(tt.secrets).Mask(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Mask (-want +got):\n%s\nreason: %s", diff, tt.reason)
			}
		})
	}
}

func TestMaskerSafeCut(t *testing.T) {
	m := template.NewMasker([]string{"s3cr3t-value"})
	line := strings.Repeat("a", 100) + "s3cr3t-value" + strings.Repeat("b", 20)
	// Cut through the middle of the secret at every place: the two pieces
	// masked apart never show any of it.
	for end := 101; end < 112; end++ {
		buf := []byte(line[:end])
		cut := m.SafeCut(buf)
		first := m.Mask(string(buf[:cut]))
		second := m.Mask(string(buf[cut:]) + line[end:])
		if got := first + second; strings.Contains(got, "s3cr3t") || strings.Contains(got, "value") {
			t.Errorf("cut at %d: %q", end, got)
		}
	}
	var nilMasker *template.Masker
	if got := nilMasker.SafeCut([]byte("abc")); got != 3 {
		t.Errorf("nil SafeCut = %d, want 3", got)
	}
}

func TestTemplateMasker(t *testing.T) {
	tmpl, err := template.Parse(strings.NewReader(`{"builders":[{"type":"null"}],
		"variables":{"user":"admin","password":null,"key":""},"sensitive-variables":["password","key"]}`), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	m := tmpl.Masker(map[string]string{"user": "admin", "password": "pw!", "key": ""})
	if got, want := m.Mask("admin:pw!"), "admin:<sensitive>"; got != want {
		t.Errorf("Mask = %q, want %q", got, want)
	}
}

func TestMaskWriter(t *testing.T) {
	secret := "s3cr3t-value"
	tests := []struct {
		name   string
		writes []string
		want   string
		reason string
	}{
		{name: "whole lines", writes: []string{"a s3cr3t-value b\n", "ok\n"}, want: "a <sensitive> b\nok\n"},
		{name: "secret split across writes", writes: []string{"pre s3cr", "3t-val", "ue post\n"}, want: "pre <sensitive> post\n"},
		{name: "carriage return ends a line", writes: []string{"10% s3cr3t-value\r", "20%\r"}, want: "10% <sensitive>\r20%\r"},
		{name: "unfinished line flushed on close", writes: []string{"tail s3cr3t-", "value"}, want: "tail <sensitive>"},
		{name: "long line without newline", writes: []string{strings.Repeat("x", 70<<10-4), "s3cr3t", "-value", strings.Repeat("y", 70<<10)},
			want:   strings.Repeat("x", 70<<10-4) + "<sensitive>" + strings.Repeat("y", 70<<10),
			reason: "a line longer than the buffer is passed on in pieces, never cutting a secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			w := template.NewMasker([]string{secret}).Writer(&b)
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(s))
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s\nreason: %s", diff, tt.reason)
			}
		})
	}
}

// TestMaskWriterEveryCut writes the same text split at every position and
// checks that no split leaks the secret, including the pieces a long line
// is passed on in.
func TestMaskWriterEveryCut(t *testing.T) {
	secrets := []string{"abcabd", "cab"}
	line := strings.Repeat("-", 64<<10) + "xxabcabdxxcabxabcab" // no newline: forces safe cuts
	want := template.NewMasker(secrets).Mask(line)
	for cut := len(line) - 40; cut < len(line); cut++ {
		var b strings.Builder
		w := template.NewMasker(secrets).Writer(&b)
		fmt.Fprint(w, line[:cut])
		fmt.Fprint(w, line[cut:])
		w.Close()
		if b.String() != want {
			t.Fatalf("split at %d: output ends %q, want %q", cut, tail(b.String()), tail(want))
		}
	}
}

func tail(s string) string { return s[max(0, len(s)-60):] }

func TestNilMaskerWriterPassesThrough(t *testing.T) {
	var b strings.Builder
	w := template.NewMasker(nil).Writer(&b)
	fmt.Fprint(w, "partial")
	if b.String() != "partial" {
		t.Errorf("nil masker writer held back %q", "partial")
	}
	w.Close()
}
