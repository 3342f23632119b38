<?php
// A PHP app with its own accounts. Signed in, its pages carry Chattr's widget, logged in as the
// same person with a token this server asked Chattr for.

declare(strict_types=1);
require __DIR__ . '/chattr.php';
app_session();

// This app's own users (a real app has a database and password hashes).
const USERS = ['alice' => 'wonderland', 'bob' => 'builder', 'carol' => 'singer'];

$error = null;
if ($_SERVER['REQUEST_METHOD'] === 'POST' && csrf_ok()) {
    $name = (string) ($_POST['user'] ?? '');
    if (isset(USERS[$name]) && hash_equals(USERS[$name], (string) ($_POST['password'] ?? ''))) {
        session_regenerate_id(true);
        $_SESSION = ['user' => $name, 'csrf' => bin2hex(random_bytes(16))];
        header('Location: /');
        exit;
    }
    $error = 'Wrong name or password.';
    http_response_code(401);
}

$user = $_SESSION['user'] ?? null;
if ($user !== null) {
    // One token per sign-in, renewed before it expires: the widget keeps its chat session
    // across page loads when it is handed the same token again.
    $chat = $_SESSION['chattr'] ?? null;
    if ($chat === null || strtotime($chat['expires_at']) - time() < 60) {
        $chat = $_SESSION['chattr'] = chattr_token($user);
    }
}
$h = fn (string $s): string => htmlspecialchars($s, ENT_QUOTES);
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Acme Support</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
<header><strong>Acme Support</strong>
  <?php if ($user !== null): ?>
    <form method="post" action="/logout.php" class="inline">Signed in as <b data-testid="app-user"><?= $h($user) ?></b>
      <?= csrf_field() ?><button>Sign out</button></form>
  <?php endif ?>
</header>
<main>
<?php if ($user === null): ?>
  <h1>Sign in</h1>
  <?php if ($error !== null): ?><p class="error"><?= $h($error) ?></p><?php endif ?>
  <form method="post">
    <?= csrf_field() ?>
    <label>Name <input name="user" autocomplete="username" required></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <button>Sign in</button>
  </form>
<?php else: ?>
  <h1>Hello, <?= $h($user) ?></h1>
  <p>Questions? The chat in the corner goes to our support channel.</p>
  <form method="post" action="/announce.php">
    <?= csrf_field() ?>
    <label>Announce in #support as the helpdesk bot <input name="text" required maxlength="1000"></label>
    <button>Post</button>
  </form>
  <p id="unread" aria-live="polite"></p>
  <script src="<?= $h(chattr_url()) ?>/embed.js" data-channel="#support" data-mode="widget"></script>
  <script>
    Chattr.login(<?= json_encode($chat['token']) ?>);
    // The app's own notice of unread chat, from the widget's events.
    Chattr.on("unread", ({ unread }) => {
      document.getElementById("unread").textContent = unread ? `${unread} unread in the chat` : "";
    });
  </script>
<?php endif ?>
</main>
</body>
</html>
