<?php
// Chattr's webhooks (CHATTR_WEBHOOK_URLS=http://this-app/webhook.php): each event, verified,
// is written to a log the app can act on. A forged or replayed one is refused.

declare(strict_types=1);
require __DIR__ . '/chattr.php';

$body = file_get_contents('php://input');
if (!chattr_verify_webhook($body, $_SERVER['HTTP_CHATTR_SIGNATURE'] ?? '')) {
    http_response_code(401);
    exit('bad signature');
}
$event = json_decode($body, true);
if (!is_array($event) || !is_string($event['delivery'] ?? null)) {
    http_response_code(400);
    exit('not a Chattr event');
}
// A retry, or a replay of a genuine delivery within the signature's window, has the same
// delivery id: record each one once.
$log = webhook_log();
umask(0077); // the log holds private messages: this user only
$seen = is_file($log) && str_contains((string) file_get_contents($log), '"delivery":' . json_encode($event['delivery']));
if (!$seen) {
    file_put_contents($log, json_encode($event) . "\n", FILE_APPEND | LOCK_EX);
}
http_response_code(204); // any 2xx: delivered; anything else is retried with backoff
