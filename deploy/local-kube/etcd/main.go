// Command etcd is etcd's own server entry point, built at the version go.mod pins so that the control plane and
// kube-apiserver's etcd client come from one dependency graph.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
