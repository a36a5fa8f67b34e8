package probe

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// xnode is one element of the generic tree ParseResponse navigates. A tree
// rather than struct tags lets one walk accept every namespace and spelling
// variant without a struct per variant.
type xnode struct {
	space string // namespace URL as resolved by encoding/xml
	local string
	attrs []xml.Attr
	text  string // trimmed character data directly inside the element
	kids  []*xnode
	buf   strings.Builder // collects text until the end tag
}

// child returns the first direct child with the given local name (any
// case), or nil. It is nil-safe so lookups can be chained.
func (n *xnode) child(local string) *xnode {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if strings.EqualFold(k.local, local) {
			return k
		}
	}
	return nil
}

// children are n's child elements; none for a nil n.
func (n *xnode) children() []*xnode {
	if n == nil {
		return nil
	}
	return n.kids
}

func (n *xnode) childText(local string) string {
	if c := n.child(local); c != nil {
		return c.text
	}
	return ""
}

// attr returns the value of the attribute with the given local name (any
// case), skipping namespace declarations.
func (n *xnode) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Space != "xmlns" && strings.EqualFold(a.Name.Local, local) {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// charsetError refuses a declared encoding other than UTF-8: decoding
// Latin-1 or UTF-16 bytes as UTF-8 would garble names and URLs silently.
type charsetError struct{ label string }

func (e *charsetError) Error() string {
	return fmt.Sprintf("declared charset %q is not UTF-8 or US-ASCII", clipInput(e.label))
}

// charsetReader admits the declarations that describe UTF-8 bytes.
// encoding/xml handles "utf-8" itself and only asks about the others.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return input, nil
	}
	return nil, &charsetError{label: label}
}

// treeBuilder holds the state of one decodeXMLTree run.
type treeBuilder struct {
	stack  []*xnode
	root   *xnode
	sawDTD bool
	done   bool
	// rootName is the local name the root element must have.
	rootName string
}

// decodeXMLTree tokenizes body into an xnode tree rooted at an Autodiscover
// element. It stops at the end of the root, so trailing bytes are ignored.
func decodeXMLTree(body []byte) (*xnode, error) { return decodeXMLTreeOf(body, "Autodiscover") }

// decodeXMLTreeOf is decodeXMLTree for a document whose root element is
// rootName (any case, any namespace), with the same caps: the one parser
// of every XML a server sends.
func decodeXMLTreeOf(body []byte, rootName string) (*xnode, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	d.CharsetReader = charsetReader
	b := treeBuilder{rootName: rootName}
	for tokens := 0; !b.done; tokens++ {
		if tokens >= maxXMLTokens {
			return nil, parseErrorf(ClassBadXML, "more than %d XML tokens", maxXMLTokens)
		}
		tok, err := d.Token()
		if err == io.EOF {
			return nil, b.eofError()
		}
		if err != nil {
			return nil, decoderError(err)
		}
		if err := b.add(tok); err != nil {
			return nil, err
		}
	}
	return b.root, nil
}

func (b *treeBuilder) add(tok xml.Token) error {
	switch t := tok.(type) {
	case xml.StartElement:
		return b.start(t)
	case xml.EndElement:
		b.end()
	case xml.CharData:
		return b.text(t)
	case xml.Directive:
		// encoding/xml never expands DTD entities, but a DTD has no place in
		// an Autodiscover answer and refusing it keeps us safe if that ever
		// changes. Before the root, wait for the root name so that an HTML
		// page with <!DOCTYPE html> is reported as what it is.
		if b.root != nil {
			return parseError(ClassBadXML, "DTD/directive inside the document is not allowed")
		}
		b.sawDTD = true
	}
	return nil
}

func (b *treeBuilder) start(t xml.StartElement) error {
	if len(b.stack) >= maxXMLDepth {
		return parseErrorf(ClassBadXML, "elements nested deeper than %d", maxXMLDepth)
	}
	n := &xnode{space: t.Name.Space, local: t.Name.Local, attrs: t.Attr}
	if b.root == nil {
		if !strings.EqualFold(n.local, b.rootName) {
			return parseErrorf(ClassNotAutodiscover, "root element is %s", clipInput(n.local))
		}
		if b.sawDTD {
			return parseError(ClassBadXML, "DOCTYPE/ENTITY declarations are not allowed")
		}
		b.root = n
	} else {
		parent := b.stack[len(b.stack)-1]
		parent.kids = append(parent.kids, n)
	}
	b.stack = append(b.stack, n)
	return nil
}

func (b *treeBuilder) end() {
	// Strict mode has already checked that the end tag matches.
	n := b.stack[len(b.stack)-1]
	n.text = strings.TrimSpace(n.buf.String())
	n.buf = strings.Builder{}
	b.stack = b.stack[:len(b.stack)-1]
	b.done = len(b.stack) == 0
}

func (b *treeBuilder) text(t xml.CharData) error {
	if len(b.stack) > 0 {
		b.stack[len(b.stack)-1].buf.Write(t)
		return nil
	}
	// Text outside any element: JSON, plain text, a server banner…
	if len(bytes.TrimSpace(t)) > 0 {
		return parseErrorf(ClassBadXML, "text outside the root element: %q", clipInput(string(t)))
	}
	return nil
}

func (b *treeBuilder) eofError() error {
	if b.root == nil {
		return parseError(ClassBadXML, "no root element")
	}
	return parseError(ClassBadXML, "truncated document")
}

// decoderError turns an encoding/xml error into a bad_xml *Error. Its
// messages quote element names and declared encodings, so they are clipped.
func decoderError(err error) error {
	var ce *charsetError
	if errors.As(err, &ce) {
		return parseError(ClassBadXML, ce.Error())
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return parseErrorf(ClassBadXML, "line %d: %s", se.Line, clipInput(se.Msg))
	}
	return parseError(ClassBadXML, clipInput(err.Error()))
}
