package probe

import (
	"errors"
	"net"
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

func TestADirectoryConnectionReadsNoMoreThanItsBudget(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		msg := []byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x61, 0x00}
		for i := 0; i < 1000; i++ { // 7,000 bytes of small, valid messages
			if _, err := server.Write(msg); err != nil {
				return
			}
		}
	}()
	c := newCappedConn(client, 4096)
	buf := make([]byte, 512)
	read := 0
	var err error
	for err == nil {
		var n int
		n, err = c.Read(buf)
		read += n
	}
	if !errors.Is(err, errResponseTooLarge) || read != 4096 {
		t.Errorf("read %d bytes, then %v; want 4096 and the budget's error", read, err)
	}
}
