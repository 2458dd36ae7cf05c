// Package netdelay delays packets for the end-to-end tests on a kernel
// without netem: it binds an NFQUEUE (nfnetlink_queue) inside a network
// namespace and accepts every packet queued to it (by an iptables NFQUEUE
// rule) only after a fixed delay, in arrival order, like
// `tc qdisc add … netem delay D` on the hooked path.
package netdelay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// nfnetlink_queue constants (linux/netfilter/nfnetlink_queue.h).
const (
	subsysQueue   = 3
	msgPacket     = 0
	msgVerdict    = 1
	msgConfig     = 2
	cfgCmd        = 1
	cfgParams     = 2
	cfgQueueMax   = 3
	cmdBind       = 1
	cmdUnbind     = 2
	copyMeta      = 1
	attrPacketHdr = 1
	attrVerdict   = 2
	nfAccept      = 1
	queueMaxLen   = 65536
	recvBuffer    = 16 << 20
)

// Queue holds the packets of one NFQUEUE number for Delay each. Start it
// with Start; Close stops it, accepting what it still holds.
type Queue struct {
	fd    int
	num   uint16
	delay time.Duration
	held  chan held
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	seq   uint32
	mu    sync.Mutex // serialises writes to fd
	errMu sync.Mutex
	err   error
}

type held struct {
	id  uint32
	due time.Time
}

// Start binds queue num in the network namespace at nsPath (for example
// /run/netns/NAME) and holds each packet queued there for delay before
// accepting it. The caller adds the iptables rule that queues packets
// (with --queue-bypass, packets pass while nothing is bound).
func Start(nsPath string, num uint16, delay time.Duration) (*Queue, error) {
	fd, err := socketIn(nsPath)
	if err != nil {
		return nil, err
	}
	q := &Queue{fd: fd, num: num, delay: delay, held: make(chan held, queueMaxLen), done: make(chan struct{})}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuffer)
	// read wakes up this often to see whether Close was called.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// One message: the kernel binds, then applies the parameters.
	cfg := attr(cfgCmd, []byte{cmdBind, 0, 0, unix.AF_INET})
	cfg = append(cfg, attr(cfgParams, []byte{0, 0, 0, 0, copyMeta})...)
	cfg = append(cfg, attr(cfgQueueMax, binary.BigEndian.AppendUint32(nil, queueMaxLen))...)
	if err := q.request(msgConfig, cfg); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind NFQUEUE %d: %w", num, err)
	}
	q.wg.Add(2)
	go q.read()
	go q.release()
	return q, nil
}

// socketIn opens a netfilter netlink socket inside the namespace at nsPath.
func socketIn(nsPath string) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return -1, err
	}
	defer own.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return -1, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("enter %s: %w", nsPath, err)
	}
	fd, sockErr := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		// This thread is in the wrong namespace: do not unlock it, so
		// that the runtime ends it with the goroutine.
		runtime.LockOSThread()
		if sockErr == nil {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("leave %s: %w", nsPath, err)
	}
	if sockErr != nil {
		return -1, fmt.Errorf("netlink socket: %w", sockErr)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// attr is one netlink attribute, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// message is a netfilter netlink message of the queue subsystem.
func (q *Queue) message(msg uint16, flags uint16, payload []byte) []byte {
	q.seq++
	b := make([]byte, 16, 20+len(payload))
	binary.NativeEndian.PutUint32(b[0:], uint32(20+len(payload)))
	binary.NativeEndian.PutUint16(b[4:], subsysQueue<<8|msg)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(b[8:], q.seq)
	// nfgenmsg: family, version, queue number (big-endian).
	b = append(b, unix.AF_UNSPEC, 0, byte(q.num>>8), byte(q.num))
	return append(b, payload...)
}

// request sends a config message and waits for its ack (before read
// runs); packets queued meanwhile are held as read holds them.
func (q *Queue) request(msg uint16, payload []byte) error {
	seq := q.seq + 1
	if err := unix.Sendto(q.fd, q.message(msg, unix.NLM_F_ACK, payload), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(q.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if acked, err := q.handle(buf[:n], seq); acked {
			return err
		}
	}
	return errors.New("no netlink ack")
}

// read receives queued packets and hands their ids to release.
func (q *Queue) read() {
	defer q.wg.Done()
	defer close(q.held)
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(q.fd, buf, 0)
		select {
		case <-q.done:
			return
		default:
		}
		if err != nil {
			// ENOBUFS: the kernel dropped messages; go on.
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			q.fail(err)
			return
		}
		q.handle(buf[:n], 0)
	}
}

// handle holds the packets in the netlink messages of b; it reports
// whether they held the ack of request seq (if not 0), and its error.
func (q *Queue) handle(b []byte, seq uint32) (acked bool, ackErr error) {
	now := time.Now()
	for len(b) >= 16 {
		l := int(binary.NativeEndian.Uint32(b))
		if l < 16 || l > len(b) {
			break
		}
		switch typ := binary.NativeEndian.Uint16(b[4:]); {
		case typ == subsysQueue<<8|msgPacket && l >= 20:
			if id, ok := packetID(b[20:l]); ok {
				q.held <- held{id: id, due: now.Add(q.delay)}
			}
		case typ == unix.NLMSG_ERROR && l >= 20 && seq != 0 && binary.NativeEndian.Uint32(b[8:]) == seq:
			acked = true
			if code := int32(binary.NativeEndian.Uint32(b[16:])); code != 0 {
				ackErr = unix.Errno(-code)
			}
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return acked, ackErr
}

// packetID finds NFQA_PACKET_HDR's packet id in a packet message's attributes.
func packetID(attrs []byte) (uint32, bool) {
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs))
		typ := binary.NativeEndian.Uint16(attrs[2:]) & 0x3fff
		if l < 4 || l > len(attrs) {
			return 0, false
		}
		if typ == attrPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(attrs[4:]), true
		}
		attrs = attrs[(l+3)&^3:]
	}
	return 0, false
}

// release accepts each held packet when it is due.
func (q *Queue) release() {
	defer q.wg.Done()
	for h := range q.held {
		select {
		case <-q.done: // closing: accept at once
		case <-time.After(time.Until(h.due)):
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint32(v[0:], nfAccept)
		binary.BigEndian.PutUint32(v[4:], h.id)
		q.mu.Lock()
		err := unix.Sendto(q.fd, q.message(msgVerdict, 0, attr(attrVerdict, v)), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		q.mu.Unlock()
		if err != nil {
			select {
			case <-q.done:
			default:
				q.fail(err)
			}
		}
	}
}

func (q *Queue) fail(err error) {
	q.errMu.Lock()
	defer q.errMu.Unlock()
	if q.err == nil {
		q.err = err
	}
}

// Err is the first error the queue met while running, if any.
func (q *Queue) Err() error {
	q.errMu.Lock()
	defer q.errMu.Unlock()
	return q.err
}

// Close accepts what the queue holds and closes the socket (which unbinds
// the queue). Packets queued later pass (--queue-bypass) or are dropped
// (without it).
func (q *Queue) Close() error {
	q.once.Do(func() { close(q.done) })
	q.wg.Wait() // read notices within its receive timeout
	return unix.Close(q.fd)
}
