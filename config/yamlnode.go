package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parser walks the yaml.Node tree itself instead of decoding into structs:
// that keeps the position of every value for error messages, lets it report
// every problem instead of the first, and gives unknown fields the same
// strictness as yaml's Decoder.KnownFields(true), which has no effect when
// decoding into a yaml.Node.
type parser struct {
	file    string
	baseDir string
	errs    []*Error

	// mappings caches the entries of every mapping read so far, and
	// expanding marks those being read. Without them a chain of
	// "<<: [*a, *a]" merges expands exponentially, and a mapping that
	// merges itself ("&a {<<: *a}", which the YAML library accepts)
	// recurses until the stack overflows.
	mappings  map[*yaml.Node][]entry
	expanding map[*yaml.Node]bool
}

func (p *parser) addf(n *yaml.Node, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line(n), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addErr records a problem with an underlying cause, kept for errors.Is/As.
func (p *parser) addErr(n *yaml.Node, field string, err error) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line(n), Field: field, Msg: err.Error(), Err: err})
}

// yamlLine matches the position prefix of the YAML library's syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// addYAMLError turns "yaml: line 3: mapping values are not allowed..." into
// the file:line: form every other error uses. The line is the YAML
// library's: for some errors ("did not find expected key") it points at the
// start of the enclosing block rather than at the offending line, and the
// library does not expose a better position.
func (p *parser) addYAMLError(err error) {
	msg := err.Error()
	e := &Error{File: p.file, Err: err}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	e.Msg = "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	p.errs = append(p.errs, e)
}

func line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// deref follows aliases to the anchored node. Callers keep the alias node
// itself for positions: the error belongs where the alias is used.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindName never includes a scalar's value: the scalar might be a password
// written in the wrong place.
func kindName(n *yaml.Node) string {
	switch deref(n).Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	case yaml.DocumentNode:
		return "document"
	default:
		return "YAML node"
	}
}

// child builds the path of a mapping entry, quoting keys that would make the
// dotted path ambiguous ("connect_to[\"a.test:443\"]").
func child(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// entry is one key/value pair of a mapping, both as written (the value may
// be an alias).
type entry struct {
	name  string
	key   *yaml.Node
	value *yaml.Node
}

// entries lists the pairs of a mapping, applying YAML merge keys
// ("<<: *base") so modules can share settings through anchors. Duplicate
// keys are errors: the YAML library accepts them when building nodes, and a
// silently ignored duplicate is a classic source of "my change did nothing".
// ok is false when n is not a mapping (already reported); null is an empty
// mapping.
func (p *parser) entries(n *yaml.Node, path string) (out []entry, ok bool) {
	m := deref(n)
	if isNull(m) {
		return nil, true
	}
	if m.Kind != yaml.MappingNode {
		p.addf(n, path, "must be a mapping, not a %s", kindName(m))
		return nil, false
	}
	if cached, done := p.mappings[m]; done {
		return cached, true
	}
	if p.expanding[m] {
		p.addf(n, path, "merge key refers to the mapping that contains it")
		return nil, false
	}
	if p.mappings == nil {
		p.mappings = make(map[*yaml.Node][]entry)
		p.expanding = make(map[*yaml.Node]bool)
	}
	p.expanding[m] = true
	defer func() {
		delete(p.expanding, m)
		p.mappings[m] = out
	}()
	seen := make(map[string]*yaml.Node)
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		dk := deref(k)
		if dk.Kind != yaml.ScalarNode {
			p.addf(k, path, "keys must be single values, not a %s", kindName(dk))
			continue
		}
		if dk.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[dk.Value]; dup {
			p.addf(k, child(path, dk.Value), "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[dk.Value] = k
		out = append(out, entry{name: dk.Value, key: k, value: v})
	}
	// Explicit keys win over merged ones, and earlier merge sources over
	// later ones, as the YAML merge key spec says.
	for _, mv := range merges {
		sources := []*yaml.Node{mv}
		if d := deref(mv); d.Kind == yaml.SequenceNode {
			sources = d.Content
		}
		for _, src := range sources {
			merged, _ := p.entries(src, child(path, "<<"))
			for _, e := range merged {
				if _, dup := seen[e.name]; !dup {
					seen[e.name] = e.key
					out = append(out, e)
				}
			}
		}
	}
	return out, true
}

// object reads a mapping with a fixed set of fields. Unknown fields are
// errors; null fields are left out so that "field:" means "use the default".
func (p *parser) object(n *yaml.Node, path string, known ...string) (map[string]entry, bool) {
	es, ok := p.entries(n, path)
	if !ok {
		return nil, false
	}
	out := make(map[string]entry, len(es))
	for _, e := range es {
		if !slices.Contains(known, e.name) {
			p.addf(e.key, child(path, e.name), "unknown field (valid fields: %s)", strings.Join(known, ", "))
			continue
		}
		if isNull(e.value) {
			continue
		}
		out[e.name] = e
	}
	return out, true
}

// list returns the items of a sequence; null is an empty list.
func (p *parser) list(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	d := deref(n)
	if isNull(d) {
		return nil, true
	}
	if d.Kind != yaml.SequenceNode {
		p.addf(n, path, "must be a list, not a %s", kindName(d))
		return nil, false
	}
	return d.Content, true
}

func (p *parser) scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	d := deref(n)
	if d == nil || d.Kind != yaml.ScalarNode {
		p.addf(n, path, "must be %s, not a %s", want, kindName(d))
		return nil, false
	}
	return d, true
}

// str accepts any scalar, as yaml does when decoding into a string, so that
// "username: 1234" works unquoted.
func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	d, ok := p.scalar(n, path, "a string")
	if !ok {
		return "", false
	}
	return d.Value, true
}

func (p *parser) integer(n *yaml.Node, path string) (int, bool) {
	d, ok := p.scalar(n, path, "an integer")
	if !ok {
		return 0, false
	}
	var v int
	if d.ShortTag() != "!!int" || d.Decode(&v) != nil {
		p.addf(n, path, "must be an integer, not %q", d.Value)
		return 0, false
	}
	return v, true
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	d, ok := p.scalar(n, path, "true or false")
	if !ok {
		return false, false
	}
	if d.ShortTag() != "!!bool" {
		p.addf(n, path, "must be true or false, not %q", d.Value)
		return false, false
	}
	var v bool
	if err := d.Decode(&v); err != nil {
		p.addf(n, path, "must be true or false, not %q", d.Value)
		return false, false
	}
	return v, true
}

// positiveDuration reads a duration that must be greater than zero.
func (p *parser) positiveDuration(n *yaml.Node, path string) (Duration, bool) {
	var d Duration
	if err := d.UnmarshalYAML(deref(n)); err != nil {
		p.addErr(n, path, err)
		return 0, false
	}
	if d <= 0 {
		p.addf(n, path, "must be greater than 0, not %s", d)
		return 0, false
	}
	return d, true
}

// errAs is errors.As for a target type, written out once.
func errAs[T error](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}
