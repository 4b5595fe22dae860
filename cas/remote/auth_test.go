package remote_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/legobuild/lego/cas/remote"
)

// capsServer answers GetCapabilities only for the expected bearer token:
// it checks the header lego sends, which bazel-remote cannot (it takes
// basic auth only).
type capsServer struct {
	repb.UnimplementedCapabilitiesServer
	token string
}

func (s *capsServer) GetCapabilities(ctx context.Context, _ *repb.GetCapabilitiesRequest) (*repb.ServerCapabilities, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+s.token {
		return nil, status.Errorf(codes.Unauthenticated, "authorization %q", got)
	}
	return &repb.ServerCapabilities{CacheCapabilities: &repb.CacheCapabilities{
		DigestFunctions: []repb.DigestFunction_Value{repb.DigestFunction_SHA256}}}, nil
}

// selfSigned returns a TLS certificate for 127.0.0.1 and its PEM file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lego test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemFile
}

func TestBearerTokenOverTLS(t *testing.T) {
	cert, caFile := selfSigned(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	repb.RegisterCapabilitiesServer(s, &capsServer{token: "s3cret"})
	go s.Serve(l)
	defer s.Stop()
	addr := "grpcs://" + l.Addr().String()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	t.Setenv("LEGO_TEST_TOKEN", "s3cret")
	t.Setenv("LEGO_WRONG_TOKEN", "nope")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    remote.Options
		want string // "" = success, else part of the error
	}{
		{"token file", remote.Options{Target: addr, TLSCA: caFile, TokenFile: tokenFile}, ""},
		{"token env", remote.Options{Target: addr, TLSCA: caFile, TokenEnv: "LEGO_TEST_TOKEN"}, ""},
		{"wrong token", remote.Options{Target: addr, TLSCA: caFile, TokenEnv: "LEGO_WRONG_TOKEN"}, "Unauthenticated"},
		{"no token", remote.Options{Target: addr, TLSCA: caFile}, "Unauthenticated"},
		{"untrusted certificate", remote.Options{Target: addr, TokenFile: tokenFile}, "certificate"},
	} {
		c, err := remote.Dial(tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err = c.Capabilities(ctx)
		c.Close()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, o := range []remote.Options{
		{Target: "http://host:1"}, {Target: "grpc://"}, {Target: addr, TokenEnv: "LEGO_UNSET_VAR"},
		{Target: addr, TokenFile: "/nonexistent"}, {Target: addr, TokenFile: tokenFile, TokenEnv: "LEGO_TEST_TOKEN"},
	} {
		if _, err := remote.Dial(o); err == nil {
			t.Errorf("Dial(%+v) accepted", o)
		}
	}
}
