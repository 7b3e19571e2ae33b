//! The harness itself works against the real tools: moto answers AWS calls,
//! kubernetes-validate accepts a valid Pod and rejects an invalid one.

use secrets_injector_tests::{Moto, kubernetes_validate};

#[test]
fn moto_serves_secrets_manager_and_ssm() {
    let moto = Moto::start();
    let out = moto.boto3(
        "sm = client('secretsmanager')\n\
         sm.create_secret(Name='harness/one', SecretString='v1')\n\
         ssm = client('ssm')\n\
         ssm.put_parameter(Name='/harness/p', Value='pv', Type='SecureString')\n\
         print(sm.get_secret_value(SecretId='harness/one')['SecretString'])\n\
         print(ssm.get_parameter(Name='/harness/p', WithDecryption=True)['Parameter']['Value'])\n",
    );
    assert_eq!(out, "v1\npv\n");
}

#[test]
fn two_moto_servers_do_not_share_state() {
    let a = Moto::start();
    let b = Moto::start();
    a.boto3("client('secretsmanager').create_secret(Name='only-in-a', SecretString='x')");
    let out = b.boto3("print(len(client('secretsmanager').list_secrets()['SecretList']))");
    assert_eq!(out.trim(), "0");
}

#[test]
fn kubernetes_validate_accepts_a_pod_and_rejects_a_typo() {
    let good = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    image: busybox\n";
    kubernetes_validate(good).unwrap();
    let bad = good.replace(
        "image: busybox",
        "image: busybox\n    imagePullPolicyy: Always",
    );
    let err = kubernetes_validate(&bad).unwrap_err();
    assert!(err.contains("imagePullPolicyy"), "{err}");
}
