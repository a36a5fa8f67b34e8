package probe

import (
	"errors"
	"testing"
)

func TestLDAPMessagesOverTheCapAreRefusedBeforeDecoding(t *testing.T) {
	small := []byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x61, 0x00} // a 5-byte SEQUENCE
	cases := []struct {
		name   string
		stream [][]byte // as the reads deliver it
		want   error
	}{
		{"small messages back to back", [][]byte{small, small, small}, nil},
		{"a small message split across reads", [][]byte{small[:1], small[1:2], small[2:]}, nil},
		{"a long-form length under the cap", [][]byte{{0x30, 0x82, 0x01, 0x00}, make([]byte, 256)}, nil},
		{"a long-form length over the cap", [][]byte{{0x30, 0x83, 0x10, 0x00, 0x00}}, errLDAPMessageBig},
		{"the length bytes split across reads", [][]byte{{0x30, 0x83}, {0x10}, {0x00, 0x00}}, errLDAPMessageBig},
		{"a second message over the cap", [][]byte{small, {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}}, errLDAPMessageBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f berFramer
			var err error
			for _, b := range c.stream {
				if err = f.feed(b, maxLDAPMessage); err != nil {
					break
				}
			}
			if !errors.Is(err, c.want) {
				t.Errorf("err %v, want %v", err, c.want)
			}
		})
	}
	var f berFramer
	if err := f.feed([]byte{0x30, 0x80}, maxLDAPMessage); err == nil {
		t.Error("an indefinite length was taken")
	}
}
