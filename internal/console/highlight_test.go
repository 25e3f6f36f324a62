package console

import (
	"fmt"
	"strings"
	"testing"
)

func TestHighlightJSON(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"object", `{"a": 1, "b": [true, null, "x"]}`,
			`{<span class="j-key">&#34;a&#34;</span>: <span class="j-num">1</span>, <span class="j-key">&#34;b&#34;</span>: ` +
				`[<span class="j-lit">true</span>, <span class="j-lit">null</span>, <span class="j-str">&#34;x&#34;</span>]}`},
		{"markup in a value", `{"div": "</pre><script>alert(1)</script>"}`,
			`{<span class="j-key">&#34;div&#34;</span>: <span class="j-str">&#34;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#34;</span>}`},
		{"escaped quote", `"a\"b": -1.5e3`, `<span class="j-key">&#34;a\&#34;b&#34;</span>: <span class="j-num">-1.5e3</span>`},
		{"key across lines", "\"k\"\n  : false", "<span class=\"j-key\">&#34;k&#34;</span>\n  : <span class=\"j-lit\">false</span>"},
		{"not JSON", `truely <b>&amp;`, `truely &lt;b&gt;&amp;amp;`},
		{"unterminated", "\"abc\n1", "<span class=\"j-str\">&#34;abc</span>\n<span class=\"j-num\">1</span>"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(highlightJSON(tc.in)); got != tc.want {
				t.Errorf("highlightJSON(%q)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzHighlight: whatever the input, the output is well-formed (only the
// highlighter's own spans, never nested, all closed), holds no markup of
// the input's, and unescaped it is the input exactly (nothing lost, nothing
// added).
func FuzzHighlight(f *testing.F) {
	for _, s := range []string{`{"a": [1, -2.5e+3, true, false, null, "x\"y"]}`, `</span><script>`, `"unterminated`,
		"\"k\"\n:\"v\\", `&amp;&#39;'`, "{\n  \"resourceType\": \"Patient\"\n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := string(highlightJSON(in))
		text, err := unmarkHighlight(out)
		if err != nil {
			t.Fatalf("highlightJSON(%q) = %q: %v", in, out, err)
		}
		if text != in {
			t.Fatalf("highlightJSON(%q) unmarked is %q", in, text)
		}
	})
}

// unmarkHighlight checks that out is the highlighter's markup and returns
// its text unescaped.
func unmarkHighlight(out string) (string, error) {
	var text strings.Builder
	open := false
	for i := 0; i < len(out); {
		switch out[i] {
		case '<':
			switch {
			case !open && strings.HasPrefix(out[i:], `<span class="j-`):
				end := strings.Index(out[i:], `">`)
				class := out[i+len(`<span class="`) : i+end]
				if class != "j-key" && class != "j-str" && class != "j-num" && class != "j-lit" {
					return "", fmt.Errorf("unknown class %q", class)
				}
				open, i = true, i+end+2
			case open && strings.HasPrefix(out[i:], "</span>"):
				open, i = false, i+len("</span>")
			default:
				return "", fmt.Errorf("stray tag at %d", i)
			}
		case '>', '"', '\'':
			return "", fmt.Errorf("unescaped %q at %d", out[i], i)
		case '&':
			ok := false
			for ent, ch := range map[string]string{"&amp;": "&", "&lt;": "<", "&gt;": ">", "&#34;": `"`, "&#39;": "'"} {
				if strings.HasPrefix(out[i:], ent) {
					text.WriteString(ch)
					i += len(ent)
					ok = true
					break
				}
			}
			if !ok {
				return "", fmt.Errorf("unknown entity at %d", i)
			}
		default:
			text.WriteByte(out[i])
			i++
		}
	}
	if open {
		return "", fmt.Errorf("unclosed span")
	}
	return text.String(), nil
}
