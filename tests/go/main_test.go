// Package embergo runs the official Go client (nats.go as Debian ships it, 1.22.x with the
// legacy JetStreamContext API) against one server binary that takes nats-server's flags.
//
//	EMBER_GO_SERVER=/path/to/ember-server go test -timeout 120s ./...
//
// TestMain starts `<server> -js -sd <tmp>/store -a 127.0.0.1 -p <free port>`, waits until it
// accepts connections, runs the tests, and stops it by its PID. Default server: nats-server.
package embergo

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var serverURL string
var serverBin string

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is one running server process started by a test or by TestMain.
type server struct {
	cmd  *exec.Cmd
	dir  string
	port int
	url  string
	args []string
}

// startServer runs the server binary with nats-server's flags on a free loopback port (or
// the given one), storing under dir, and waits (bounded) until it accepts connections.
func startServer(dir string, port int, js bool) (*server, error) {
	if port == 0 {
		port = freePort()
	}
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}
	if js {
		args = append(args, "-js", "-sd", filepath.Join(dir, "store"))
	}
	logf, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(serverBin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	logf.Close()
	s := &server{cmd: cmd, dir: dir, port: port, url: fmt.Sprintf("nats://127.0.0.1:%d", port), args: args}
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return nil, fmt.Errorf("%s did not accept connections on port %d", serverBin, port)
}

// kill stops the server with SIGKILL (the crash a durable store must survive) and reaps it.
func (s *server) kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// stop asks the server to shut down (SIGTERM, as a service manager would; an ASan build
// then reports leaks at exit) and falls back to SIGKILL after 10 s.
func (s *server) stop() {
	if s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func logTail(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func TestMain(m *testing.M) {
	serverBin = os.Getenv("EMBER_GO_SERVER")
	if serverBin == "" {
		serverBin = "nats-server"
	}
	dir, err := os.MkdirTemp("", "ember-go-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := 2
	srv, err := startServer(dir, 0, true)
	if err == nil {
		serverURL = srv.url
		code = m.Run()
		srv.stop()
		// nats-server exits 1 on SIGTERM; Ember exits 0 (non-zero under ASan means a report)
		if isEmber() && !srv.cmd.ProcessState.Success() && code == 0 {
			fmt.Fprintf(os.Stderr, "server exited with %v after the tests\n", srv.cmd.ProcessState)
			code = 1
		}
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	if code != 0 || os.Getenv("EMBER_GO_KEEP") == "1" {
		fmt.Fprintf(os.Stderr, "--- server log tail (%s):\n%s\n", serverBin, logTail(dir))
	}
	if os.Getenv("EMBER_GO_KEEP") != "1" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func connect(t *testing.T, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Timeout(5 * time.Second)}, opts...)
	nc, err := nats.Connect(serverURL, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func jsctx(t *testing.T) (*nats.Conn, nats.JetStreamContext) {
	t.Helper()
	nc := connect(t)
	js, err := nc.JetStream(nats.MaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// isEmber tells Ember from nats-server by the server name/version it advertises is not
// reliable (Ember advertises 2.11); the binary path decides.
func isEmber() bool { return strings.Contains(filepath.Base(serverBin), "ember") }

// atLeast reports whether the connected server advertises at least major.minor.
func atLeast(nc *nats.Conn, major, minor int) bool {
	v := strings.SplitN(nc.ConnectedServerVersion(), ".", 3)
	if len(v) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(v[0])
	mi, _ := strconv.Atoi(v[1])
	return ma > major || (ma == major && mi >= minor)
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func uniq(prefix string) string {
	return fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano()%1000000000)
}
