// A gRPC server on grpc-go that answers every unary call with the same bytes.
//
// No generated code: a codec passes raw bytes and an unknown-service handler answers
// any method, so it serves inference.GRPCInferenceService/ModelInfer without the proto.
// Prints "PORT <n>" once it listens on 127.0.0.1.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func main() {
	port := flag.Int("port", 0, "port (0: any free one)")
	respHex := flag.String("response", "", "response bytes, hex")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	var resp []byte
	if _, err := fmt.Sscanf(*respHex, "%x", &resp); err != nil && *respHex != "" {
		fmt.Fprintln(os.Stderr, "bad -response:", err)
		os.Exit(2)
	}
	encoding.RegisterCodec(rawCodec{})
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	handler := func(srv interface{}, stream grpc.ServerStream) error {
		var req []byte
		if err := stream.RecvMsg(&req); err != nil {
			return err
		}
		out := resp
		return stream.SendMsg(&out)
	}
	s := grpc.NewServer(grpc.UnknownServiceHandler(handler))
	fmt.Printf("PORT %d\n", lis.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
