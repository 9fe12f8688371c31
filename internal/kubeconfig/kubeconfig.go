// Package kubeconfig writes the kubeconfigs Marina hands out (to the
// components of a control plane, to administrators) and turns them back into
// client configurations.
package kubeconfig

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Config is one cluster, one user, one context.
type Config struct {
	// Cluster names the cluster and the context.
	Cluster string
	// User names the user.
	User string
	// Server is the API server's URL.
	Server string

	// The CA that signed the server's certificate: PEM data, or a path
	// inside the pod that reads the kubeconfig.
	CAData []byte
	CAFile string

	// The client certificate and key: PEM data, or paths. Paths keep a
	// kubeconfig valid across certificate renewals (client-go rereads the
	// files), and no private key is copied into it.
	CertData, KeyData []byte
	CertFile, KeyFile string

	// Token is a bearer token instead of a client certificate, such as a
	// ServiceAccount's.
	Token string
}

// Write returns the kubeconfig as YAML.
func Write(c Config) ([]byte, error) {
	if c.Cluster == "" || c.User == "" || c.Server == "" {
		return nil, errors.New("kubeconfig: cluster, user and server are required")
	}
	if (len(c.CAData) == 0) == (c.CAFile == "") {
		return nil, errors.New("kubeconfig: exactly one of CA data and CA file is required")
	}
	switch {
	case c.Token != "":
		if len(c.CertData) > 0 || c.CertFile != "" || len(c.KeyData) > 0 || c.KeyFile != "" {
			return nil, errors.New("kubeconfig: a token or a client certificate, not both")
		}
	case (len(c.CertData) == 0) != (len(c.KeyData) == 0) || (c.CertFile == "") != (c.KeyFile == "") ||
		(len(c.CertData) == 0) == (c.CertFile == ""):
		return nil, errors.New("kubeconfig: a client certificate and key are required, as data or as files, or a token")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Cluster] = &clientcmdapi.Cluster{
		Server:                   c.Server,
		CertificateAuthority:     c.CAFile,
		CertificateAuthorityData: c.CAData,
	}
	cfg.AuthInfos[c.User] = &clientcmdapi.AuthInfo{
		ClientCertificate:     c.CertFile,
		ClientCertificateData: c.CertData,
		ClientKey:             c.KeyFile,
		ClientKeyData:         c.KeyData,
		Token:                 c.Token,
	}
	cfg.Contexts[c.User] = &clientcmdapi.Context{Cluster: c.Cluster, AuthInfo: c.User}
	cfg.CurrentContext = c.User
	return clientcmd.Write(*cfg)
}

// RESTConfig reads a kubeconfig into a client configuration of its current
// context.
func RESTConfig(data []byte) (*rest.Config, error) {
	cc, err := clientcmd.NewClientConfigFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	return cfg, nil
}
